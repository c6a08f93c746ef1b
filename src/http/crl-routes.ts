import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';

/** A stored CRL as the routes serve it (revocation/ CrlPublisher.latest and rootCrl return these). */
export interface ServedCrl {
  issuerId: string;
  shard: number;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Uint8Array;
}

export interface CrlRouteDeps {
  latest(issuerId: string, shard: number): Promise<ServedCrl | undefined>;
  rootCrl(): Promise<ServedCrl | undefined>;
  clock: Clock;
  /**
   * Upper bound of Cache-Control max-age, in seconds: the regeneration interval (CrlPublisher.refreshMs),
   * so an HTTP cache never holds a CRL much longer than the publisher takes to replace it.
   */
  maxAgeSeconds: number;
}

// Issuer ids are short lower-case names (ca/ceremony.ts); shards are below 4096 (config/settings.ts).
const ISSUER = /^[a-z0-9]{1,32}$/;
const SHARD_FILE = /^(0|[1-9][0-9]{0,3})\.crl$/;

/**
 * GET (and HEAD) /crl/<issuer>/<shard>.crl and /crl/root.crl (DESIGN.md "URLs"): the latest stored CRL as
 * DER, `application/pkix-crl` (RFC 5280 §4.2.1.13, RFC 2585 §4.2), served from the database so every
 * instance answers alike. Validators: ETag names the CRL (issuer, shard, number: a number always names the
 * same bytes), Last-Modified is thisUpdate; a matching If-None-Match or If-Modified-Since gets 304.
 */
export function registerCrlRoutes(app: FastifyInstance, deps: CrlRouteDeps): void {
  app.get('/crl/root.crl', async (request, reply) => serve(request, reply, deps, () => deps.rootCrl()));

  app.get<{ Params: { issuer: string; file: string } }>('/crl/:issuer/:file', async (request, reply) => {
    const { issuer, file } = request.params;
    const shard = SHARD_FILE.exec(file)?.[1];
    if (!ISSUER.test(issuer) || shard === undefined) return notFound(reply);
    return serve(request, reply, deps, () => deps.latest(issuer, Number(shard)));
  });
}

async function serve(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: CrlRouteDeps,
  find: () => Promise<ServedCrl | undefined>,
): Promise<FastifyReply> {
  let crl: ServedCrl | undefined;
  try {
    crl = await find();
  } catch (error) {
    // The cause goes to the log, never to the client (DESIGN.md rule 3).
    request.log.error({ err: error }, 'cannot read the CRL');
    return reply.code(503).header('retry-after', '5').type('text/plain').send('CRL temporarily unavailable\n');
  }
  if (crl === undefined) return notFound(reply);

  const etag = `"${crl.issuerId}-${crl.shard}-${crl.number}"`;
  const secondsLeft = Math.floor((crl.nextUpdate.getTime() - deps.clock.now().getTime()) / 1000);
  const maxAge = Math.max(0, Math.min(secondsLeft, Math.floor(deps.maxAgeSeconds)));
  reply
    .header('etag', etag)
    .header('last-modified', crl.thisUpdate.toUTCString())
    .header('cache-control', `public, max-age=${maxAge}`);
  if (notModified(request, etag, crl.thisUpdate)) return reply.code(304).send();
  return reply.type('application/pkix-crl').send(Buffer.from(crl.der.buffer, crl.der.byteOffset, crl.der.byteLength));
}

/** RFC 9110 §13.1.2 (If-None-Match, weak comparison) takes precedence over §13.1.3 (If-Modified-Since). */
function notModified(request: FastifyRequest, etag: string, lastModified: Date): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch
      .split(',')
      .map((tag) => tag.trim().replace(/^W\//, ''))
      .some((tag) => tag === '*' || tag === etag);
  }
  const ifModifiedSince = request.headers['if-modified-since'];
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && lastModified.getTime() <= since;
}

function notFound(reply: FastifyReply): FastifyReply {
  return reply.code(404).type('text/plain').send('no such CRL\n');
}
