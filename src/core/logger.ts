/**
 * The one logger slice every layer takes (structured details first, then a message): pino's and Fastify's
 * loggers satisfy it, tests pass `silentLogger`. Secrets are never put in `details` (DESIGN.md: PINs,
 * passphrases, EAB and private keys never reach logs).
 */
export interface Logger {
  error(details: object, message: string): void;
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
  debug(details: object, message: string): void;
}

const ignore = (): void => undefined;

export const silentLogger: Logger = { error: ignore, warn: ignore, info: ignore, debug: ignore };
