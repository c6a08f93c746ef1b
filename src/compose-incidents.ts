import type { Logger as PinoLogger } from 'pino';
import { parseCertificate } from './ca/certificate-parser.js';
import type { Config } from './config/config.js';
import type { Clock } from './core/clock.js';
import { CaError } from './core/errors.js';
import type { DomainEvents } from './core/events.js';
import type { JobRunner } from './core/jobs.js';
import type { Database, Queryable } from './db/database.js';
import { listen, notify } from './db/notifications.js';
import { BulkRevocationRepository } from './db/repositories/bulk-revocation-repository.js';
import { CertificateSearchRepository } from './db/repositories/certificate-search-repository.js';
import { IncidentRepository } from './db/repositories/incident-repository.js';
import { OcspResponseRepository } from './db/repositories/ocsp-repository.js';
import { StatementBatcher } from './db/statement-batcher.js';
import { IncidentReplacements } from './inventory/incident-replacements.js';
import { IncidentService, type IncidentAdmin, type IncidentStores } from './inventory/incident-service.js';
import { INCIDENT_SWEEP_INTERVAL_MS, IncidentSweep } from './inventory/incident-sweep.js';
import { IncidentDirectory, INCIDENTS_CHANNEL } from './ra/incident-directory.js';
import { BulkCrlSchedule } from './revocation/bulk-crl.js';
import { BULK_REVOCATION_INTERVAL_MS, BULK_REVOCATION_JOB, BulkRevoker, scopesOf } from './revocation/bulk-revoker.js';
import type { CrlPublisher } from './revocation/crl-publisher.js';
import { OCSP_CHANNEL, type OcspSource } from './revocation/ocsp-source.js';

/**
 * The incidents' part of the composition root (compose.ts calls it; DESIGN.md rule 5): the in-memory
 * directory of open incidents and blocked keys the ACME path reads (built before the RA), then bulk
 * revocation, the incident service, its jobs and every consequence of their events, wired once.
 */

export const INCIDENTS_SWEEP_JOB = 'incidents.sweep';

/**
 * The incident service as the admin API holds it from the start (composeBase builds the API before a CA
 * exists): until compose() sets the real one, every call answers caState, as revocation does.
 */
export class LateIncidents implements IncidentAdmin {
  private target: IncidentService | undefined;

  set(service: IncidentService): void {
    this.target = service;
  }

  private get service(): IncidentService {
    if (this.target === undefined) throw new CaError('caState', 'no CA in this database: run `chancery init` first (or `npm start`)');
    return this.target;
  }

  preview: IncidentService['preview'] = (...args) => this.service.preview(...args);
  declare: IncidentService['declare'] = (...args) => this.service.declare(...args);
  get: IncidentService['get'] = (...args) => this.service.get(...args);
  list: IncidentService['list'] = (...args) => this.service.list(...args);
  status: IncidentService['status'] = (...args) => this.service.status(...args);
  close: IncidentService['close'] = (...args) => this.service.close(...args);
  certificates: IncidentService['certificates'] = (...args) => this.service.certificates(...args);
}

type Closer = () => Promise<void> | void;

/**
 * Open incidents and blocked keys in memory (ra/incident-directory.ts), dropped on every declaration or
 * closing heard on INCIDENTS_CHANNEL (DESIGN.md rule 7). A refused blocked key is counted and audited in one
 * transaction.
 */
export async function composeIncidentDirectory(deps: {
  db: Database;
  clock: Clock;
  logger: PinoLogger;
  events: DomainEvents<Queryable>;
  listening: boolean;
  onClose: (closer: Closer) => void;
}): Promise<IncidentDirectory> {
  const { db, events, logger } = deps;
  const incidents = new IncidentRepository(db);
  // renewalInfo requests of the same moment share one lookup (only while an incident is open).
  const covering = new StatementBatcher((items: { serial: string; open: readonly string[] }[]) =>
    incidents.coveringMany(
      items.map((i) => i.serial),
      [...new Set(items.flatMap((i) => i.open))],
    ),
  );
  const directory = new IncidentDirectory({
    source: {
      openSummaries: () => incidents.openSummaries(),
      blockedKeys: () => incidents.blockedKeys(),
      covering: async (serial, open) => (await covering.submit({ serial, open })).filter((id) => open.includes(id)),
    },
    clock: deps.clock,
    recordBlock: (block) =>
      db.transaction(async (tx) => {
        await new IncidentRepository(tx).recordBlock({
          incidentId: block.incident.id,
          at: block.at,
          kind: block.use,
          spkiSha256: block.spkiSha256,
          ...(block.accountId === undefined ? {} : { accountId: block.accountId }),
          ...(block.group === undefined ? {} : { group: block.group }),
        });
        await events.committing({ type: 'incident.key.blocked', ...block }, tx);
      }),
    onRecordFailed: (error) => logger.error({ err: error }, 'recording a refused blocked key failed; the refusal stands'),
  });
  // Announced in the declaration's (and closing's) transaction: every instance drops its snapshot once it commits.
  for (const type of ['incident.declared', 'incident.closed'] as const) {
    events.onCommitting(type, (event, tx) => notify(tx, INCIDENTS_CHANNEL, event.incident.id));
    events.onCommitted(type, () => directory.invalidate());
  }
  if (deps.listening) {
    const subscription = await listen(db, INCIDENTS_CHANNEL, () => directory.invalidate(), {
      onState: (state, error) => {
        if (state === 'lost') logger.warn({ err: error }, 'incident notifications lost; open incidents and blocked keys are read again every few seconds until they resume');
        directory.setListening(state === 'listening');
      },
    });
    deps.onClose(() => subscription.close());
    directory.setListening(true);
  }
  return directory;
}

/** The incident service's stores on one Queryable: a declaration walks its selection on its own transaction. */
function incidentStores(q: Queryable): IncidentStores {
  return { incidents: new IncidentRepository(q), inventory: new CertificateSearchRepository(q) };
}

/** Bulk revocation, the incident service and its jobs, over the CA's OCSP source and CRL publisher. */
export function composeIncidents(deps: {
  config: Config;
  db: Database;
  clock: Clock;
  logger: PinoLogger;
  events: DomainEvents<Queryable>;
  jobs: JobRunner;
  ocsp: OcspSource;
  crl: CrlPublisher;
  directory: IncidentDirectory;
  groupNames: () => Promise<string[]>;
  onClose: (closer: Closer) => void;
}): { bulk: BulkRevoker<Queryable>; incidents: IncidentService; sweep: IncidentSweep } {
  const { config, db, clock, logger, events, jobs, ocsp } = deps;
  const kick = (name: string) => (): void => {
    jobs.runNow(name).catch((error: unknown) => logger.error({ err: error, job: name }, 'job run on request failed; it runs again at its interval'));
  };

  // ---- bulk revocation: chunks, their OCSP batches and cache invalidations, the CRLs every few seconds ----
  const crlSchedule = new BulkCrlSchedule({ crl: deps.crl, intervalMs: config.revocation.bulkCrlIntervalSeconds * 1000, logger });
  deps.onClose(() => crlSchedule.stop());
  const runs = new BulkRevocationRepository(db);
  const bulk = new BulkRevoker<Queryable>({
    store: runs,
    transaction: (fn) => db.transaction((tx) => fn({ tx, runs: new BulkRevocationRepository(tx) })),
    events,
    clock,
    crl: crlSchedule,
    settings: { chunkSize: config.revocation.bulkChunkSize },
    // The next chunk's revoked responses are signed (on the key's batch worker) while this one is written.
    readAhead: (chunk) => ocsp.signAhead(chunk.key, chunk.certificates.map((c) => ({ ...c, status: 'revoked' as const }))),
    logger,
  });
  bulk.onPlanned(kick(BULK_REVOCATION_JOB));
  const chunkKey = (event: { run: { id: string }; chunk: number }): string => `bulk:${event.run.id}:${event.chunk}`;
  // The chunk's revoked responses are signed and stored, and the NOTIFY sent, in the chunk's transaction
  // (as for one revocation): no instance reads `good` from the database once the chunk is visible.
  events.onCommitting('certificates.revoked', async (event, tx) => {
    await ocsp.beforeBulkRevocationCommit(
      { putMany: (records) => new OcspResponseRepository(tx).putMany(records), notify: (payload) => notify(tx, OCSP_CHANNEL, payload) },
      event.certificates,
      { key: chunkKey(event), first: event.first, last: event.last, signedAhead: `${event.run.id}:${event.first}` },
    );
  });
  events.onCommitted('certificates.revoked', async (event) => {
    if (event.certificates.length === 0) return;
    await ocsp.afterBulkRevocation({ key: chunkKey(event), first: event.first, last: event.last });
    crlSchedule.revoked(scopesOf(event.certificates));
  });
  jobs.register({ name: BULK_REVOCATION_JOB, intervalMs: BULK_REVOCATION_INTERVAL_MS, run: async (context) => void (await bulk.runPending(context)) });

  // ---- incidents ----
  const incidentRepository = new IncidentRepository(db);
  const incidents = new IncidentService({
    access: { stores: incidentStores(db), transaction: (fn) => db.transaction((tx) => fn(incidentStores(tx), tx)) },
    events,
    clock,
    groupNames: deps.groupNames,
    spkiOf: (der) => parseCertificate(der).spki,
    runs: { ofIncident: (id) => runs.findByOriginPrefix(`incident:${id}:`) },
    ariRetryAfterSeconds: config.ari.retryAfterSeconds,
    kickSweep: kick(INCIDENTS_SWEEP_JOB),
  });
  const sweep = new IncidentSweep({
    store: incidentRepository,
    memberSerials: (on, id, after, limit) => new IncidentRepository(on).memberSerials(id, after, limit),
    revoker: bulk,
    clock,
    logger,
  });
  jobs.register({ name: INCIDENTS_SWEEP_JOB, intervalMs: INCIDENT_SWEEP_INTERVAL_MS, run: ({ signal }) => sweep.run(signal) });

  // Replacements of incident certificates, recorded as they are issued: one statement for the issuances of
  // the same moment, only while an incident is open.
  const replaced = new StatementBatcher(async (items: { serial: string; replaces?: string; at: Date }[]) => {
    const rows = await incidentRepository.recordReplacements(items);
    return items.map((item) => rows.filter((row) => row.replacedBy === item.serial).map((row) => row.incidentId));
  });
  const replacements = new IncidentReplacements({
    anyOpen: () => deps.directory.anyOpen(),
    record: (item) => replaced.submit(item),
    revokesOnReplacement: async (id) => {
      const incident = await deps.directory.open(id);
      return incident !== undefined && !incident.drill && incident.revoke === 'when-replaced';
    },
    kickSweep: kick(INCIDENTS_SWEEP_JOB),
    logger,
  });
  events.onCommitted('certificate.issued', ({ certificate }) => replacements.onIssued(certificate));
  return { bulk, incidents, sweep };
}
