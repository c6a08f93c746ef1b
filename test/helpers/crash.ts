import type { Database, Queryable, QueryOptions, QueryResult } from '../../src/db/database.js';
import type { KeyStore, Signer } from '../../src/keys/signer.js';

/**
 * A process that dies mid-request, as the rest of the system sees it: from some point on nothing more of it
 * reaches the database or the HSM. Tests put a CrashableDatabase and a counting key store under one
 * compose(); when the trigger fires, every later statement and signature of that instance never returns
 * (a dead process answers nothing), while the real database underneath is left exactly as the crash left
 * it for a second composition — the restart — to find.
 */

/** A promise that never settles: what a dead process's calls do. */
export function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

export type StatementTrigger = (sql: string, params: readonly unknown[] | undefined) => boolean;

export class CrashableDatabase implements Database {
  readonly driver: Database['driver'];
  dead = false;
  /** Fires after the matching statement has run on the real database: its answer is lost with the process. */
  crashAfter: StatementTrigger | undefined;
  /** Statements seen, with their parameters (the claim's serial is among them). */
  readonly seen: { sql: string; params: readonly unknown[] | undefined }[] = [];

  constructor(private readonly inner: Database) {
    this.driver = inner.driver;
  }

  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    return this.run(this.inner, sql, params, options);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    if (this.dead) return never();
    return this.inner.transaction((tx) => fn({ query: (sql, params, options) => this.run(tx, sql, params, options) }));
  }

  /** The composition closes it; the real database belongs to the test. */
  async close(): Promise<void> {}

  private async run<R>(on: Queryable, sql: string, params: readonly unknown[] | undefined, options: QueryOptions | undefined): Promise<QueryResult<R>> {
    if (this.dead) return never();
    this.seen.push({ sql, params });
    const result = await on.query<R>(sql, params, options);
    if (this.crashAfter?.(sql, params)) {
      this.dead = true;
      return never();
    }
    return result;
  }
}

/** The serial of a TBSCertificate (RFC 5280 §4.1: [0] version, then serialNumber), or undefined for other TBS. */
export function tbsCertificateSerial(tbs: Uint8Array): string | undefined {
  const bytes = Buffer.from(tbs);
  const header = (at: number): { tag: number; start: number; end: number } => {
    const tag = bytes[at]!;
    let length = bytes[at + 1]!;
    let start = at + 2;
    if (length & 0x80) {
      const n = length & 0x7f;
      length = 0;
      for (let i = 0; i < n; i += 1) length = length * 256 + bytes[start + i]!;
      start += n;
    }
    return { tag, start, end: start + length };
  };
  const outer = header(0);
  if (outer.tag !== 0x30) return undefined;
  const version = header(outer.start);
  // TBSCertList and OCSP ResponseData do not start with [0] EXPLICIT version followed by an INTEGER.
  if (version.tag !== 0xa0) return undefined;
  const serial = header(version.end);
  if (serial.tag !== 0x02) return undefined;
  return bytes.subarray(serial.start, serial.end).toString('hex').replace(/^(00)+(?=.)/, '');
}

export interface SignatureLog {
  /** Signatures per certificate serial (hex, no leading zero bytes), over every instance sharing the log. */
  readonly perSerial: Map<string, number>;
  /** Runs after each certificate signature; return 'crash' to make that signature never return. */
  afterSign?: (serial: string) => 'crash' | undefined;
}

/** A KeyStore whose signers record every certificate they sign (ComposeOptions.wrapKeyStore). */
export function countingKeyStore(keys: KeyStore, log: SignatureLog, onCrash: () => void = () => undefined): KeyStore {
  const wrap = (signer: Signer): Signer => ({
    name: signer.name,
    keyAlgorithm: signer.keyAlgorithm,
    algorithm: signer.algorithm,
    publicKey: signer.publicKey,
    async sign(tbs) {
      const serial = tbsCertificateSerial(tbs);
      if (serial !== undefined) log.perSerial.set(serial, (log.perSerial.get(serial) ?? 0) + 1);
      const signature = await signer.sign(tbs);
      if (serial !== undefined && log.afterSign?.(serial) === 'crash') {
        onCrash();
        return never();
      }
      return signature;
    },
  });
  return {
    backend: keys.backend,
    ...(keys.health === undefined ? {} : { health: keys.health }),
    create: async (name, spec) => wrap(await keys.create(name, spec)),
    load: async (name, options) => {
      const signer = await keys.load(name, options);
      return signer === undefined ? undefined : wrap(signer);
    },
    close: () => keys.close(),
  };
}
