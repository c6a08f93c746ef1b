import { request as httpRequest } from 'node:http';
import { userInfo } from 'node:os';
import { compose, composeBase } from '../compose.js';
import type { Config } from '../config/config.js';
import { CaError, type CaErrorKind } from '../core/errors.js';
import { adminSocketPath, socketServed } from './admin-socket.js';

/** The CLI's view of the admin API: the same requests whether a server answers them or this process does. */
export interface AdminClient {
  /** `path` below /admin/v1 (e.g. `/eab`); the answer's JSON body, or a CaError carrying its problem. */
  call<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** Every item of a list, page after page (keyset cursors). */
  all<T = Record<string, unknown>>(path: string): Promise<T[]>;
  readonly via: 'socket' | 'in-process';
  close(): Promise<void>;
}

/** The header the socket reads the operator's (self-reported) user name from (http/admin-app.ts). */
const USER_HEADER = 'x-chancery-user';

function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

/** A problem document from the admin API, thrown as the CaError a CLI command reports. */
export class AdminProblemError extends CaError {
  constructor(
    readonly status: number,
    readonly problem: { detail?: string; issues?: { path: (string | number)[]; rule: string; message: string }[] },
  ) {
    super(kindOf(status), problem.detail ?? `the admin API answered ${status}`);
  }
}

function kindOf(status: number): CaErrorKind {
  if (status === 400) return 'malformed';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 404) return 'notFound';
  if (status === 409) return 'conflict';
  if (status === 503) return 'unavailable';
  return 'serverInternal';
}

type Transport = (method: string, path: string, body: string | undefined) => Promise<{ status: number; text: string }>;

function client(transport: Transport, via: AdminClient['via'], close: () => Promise<void>): AdminClient {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const { status, text } = await transport(method, `/admin/v1${path}`, body === undefined ? undefined : JSON.stringify(body));
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new CaError('serverInternal', `the admin API answered ${status} with something that is not JSON`);
    }
    if (status !== 200) throw new AdminProblemError(status, parsed as AdminProblemError['problem']);
    return parsed as T;
  };
  return {
    via,
    call,
    async all<T>(path: string): Promise<T[]> {
      const items: T[] = [];
      let next: string | undefined;
      do {
        const separator = path.includes('?') ? '&' : '?';
        const page = await call<{ items: T[]; next?: string }>('GET', next === undefined ? path : `${path}${separator}cursor=${encodeURIComponent(next)}`);
        items.push(...page.items);
        next = page.next;
      } while (next !== undefined);
      return items;
    },
    close,
  };
}

/**
 * The admin API for a CLI command. When a Chancery process serves this data directory's admin socket, the
 * command goes through it as the local operator (`cli:<user>`, self-reported): the embedded database
 * serves one process only, and the server's caches, events and jobs see the change. Otherwise the command
 * runs the same app in this process (compose(), or composeBase() while no CA exists yet: credentials can
 * be minted before the first start).
 */
export async function openAdminClient(config: Config): Promise<AdminClient> {
  const user = localUser();
  const socketPath = adminSocketPath(config.dataDir);
  if (await socketServed(socketPath)) return client(socketTransport(socketPath, user), 'socket', async () => undefined);
  const base = await composeBase(config);
  let chancery: { localAdmin(): Promise<{ inject: InjectFn }>; close(): Promise<void> } = base;
  if ((await base.services.issuers.findRoot()) !== undefined) {
    await base.close();
    chancery = await compose(config, { listen: false });
  }
  try {
    const app = await chancery.localAdmin();
    const transport: Transport = async (method, path, body) => {
      const response = await app.inject({
        method,
        url: path,
        headers: { [USER_HEADER]: user, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { payload: body }),
      });
      return { status: response.statusCode, text: response.body };
    };
    return client(transport, 'in-process', () => chancery.close());
  } catch (error) {
    await chancery.close();
    throw error;
  }
}

type InjectFn = (options: { method: string; url: string; headers: Record<string, string>; payload?: string }) => Promise<{ statusCode: number; body: string }>;

function socketTransport(socketPath: string, user: string): Transport {
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const request = httpRequest(
        { socketPath, method, path, headers: { [USER_HEADER]: user, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }) } },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
          response.on('error', reject);
        },
      );
      request.on('error', (cause) => reject(new CaError('unavailable', `the admin socket ${socketPath} did not answer: ${cause.message}`, { cause })));
      request.end(body);
    });
}
