import { CaError } from '../../core/errors.js';
import type { LeaseStore } from '../../core/jobs.js';
import type { Queryable } from '../database.js';

/** A job lease as stored, for operators (`chancery jobs`) and tests. */
export interface JobLeaseRecord {
  name: string;
  /** The instance holding it, or the last one that did. */
  holder: string;
  token: number;
  acquiredAt: Date | undefined;
  renewedAt: Date | undefined;
  /** Undefined once released. */
  expiresAt: Date | undefined;
}

interface JobLeaseRow {
  name: string;
  holder: string;
  token: number | bigint | string;
  acquired_at: Date | null;
  renewed_at: Date | null;
  expires_at: Date | null;
}

function token(value: number | bigint | string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) throw new CaError('serverInternal', `unexpected value in the database: lease token ${String(value)}`);
  return number;
}

function leaseFromRow(row: JobLeaseRow): JobLeaseRecord {
  return {
    name: row.name,
    holder: row.holder,
    token: token(row.token),
    acquiredAt: row.acquired_at ?? undefined,
    renewedAt: row.renewed_at ?? undefined,
    expiresAt: row.expires_at ?? undefined,
  };
}

// A released lease expires at '-infinity': free to every instance whatever its clock says, while the row
// (and with it the token) stays. Read back as NULL, so no driver has to map an infinite timestamp.
const LEASE_COLUMNS = `name, holder, token, acquired_at, renewed_at,
  CASE WHEN expires_at = '-infinity' THEN NULL ELSE expires_at END AS expires_at`;

/**
 * Job leases (migrations/0006; the LeaseStore of src/core/jobs.ts): which instance runs each periodic job.
 * Every decision is one statement on the lease's row, so instances sharing the database (rule 7) never both
 * get the lease: PostgreSQL makes a second acquisition wait on the row lock of the first and then re-checks
 * its WHERE against the committed row. Times are the callers' Clock readings (rule 4); SQL never asks the
 * server for the time, so the database and PGlite behave alike and tests can cross expiries.
 */
export class LeaseRepository implements LeaseStore {
  constructor(private readonly db: Queryable) {}

  /**
   * Inserts the lease or takes over the row when it has expired (at `now`; `<=`, so an expiry instant
   * belongs to the next holder), has been released, or is already this holder's. The token only ever
   * grows, also across releases, since the row is never deleted.
   */
  async acquire(name: string, holder: string, now: Date, expiresAt: Date): Promise<{ token: number } | undefined> {
    const result = await this.db.query<{ token: number | bigint | string }>(
      `INSERT INTO job_leases (name, holder, token, acquired_at, renewed_at, expires_at)
       VALUES ($1, $2, 1, $3, NULL, $4)
       ON CONFLICT (name) DO UPDATE
         SET holder = EXCLUDED.holder, token = job_leases.token + 1, acquired_at = EXCLUDED.acquired_at,
             renewed_at = NULL, expires_at = EXCLUDED.expires_at
         WHERE job_leases.expires_at <= $3 OR job_leases.holder = $2
       RETURNING token`,
      [name, holder, now, expiresAt],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : { token: token(row.token) };
  }

  /** Extends the lease only while `holder` still holds it with `token` and it has not expired at `now`. */
  async renew(name: string, holder: string, leaseToken: number, now: Date, expiresAt: Date): Promise<boolean> {
    const result = await this.db.query(
      `UPDATE job_leases SET renewed_at = $4, expires_at = $5
       WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > $4`,
      [name, holder, leaseToken, now, expiresAt],
    );
    return result.rowCount === 1;
  }

  /** Frees the lease at once if `holder` still holds it with `token`; a stale release changes nothing. */
  async release(name: string, holder: string, leaseToken: number): Promise<void> {
    await this.db.query(`UPDATE job_leases SET expires_at = '-infinity' WHERE name = $1 AND holder = $2 AND token = $3`, [
      name,
      holder,
      leaseToken,
    ]);
  }

  /** Every lease, by name: a handful of rows, one per job. */
  async list(): Promise<JobLeaseRecord[]> {
    const result = await this.db.query<JobLeaseRow>(`SELECT ${LEASE_COLUMNS} FROM job_leases ORDER BY name`);
    return result.rows.map(leaseFromRow);
  }
}
