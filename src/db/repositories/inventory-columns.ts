import type { LinkedCertificate } from '../../core/lineage.js';
import { certificateFromRow } from '../row-mappers.js';
import type { CertificateRow } from '../row-types.js';
import { qualified } from './columns.js';

/**
 * The certificate columns the inventory's reports read (lineage, renewal health, keys): every column of
 * IssuedCertificate, and the predecessor migration 0014 records. Named, never `*` (DESIGN.md rule 6).
 */
const CERTIFICATE_COLUMNS =
  'serial, issuer_id, crl_shard, der, identifiers, spki_sha256, not_before, not_after, status, revoked_at, ' +
  'revocation_reason, invalidity_date, created_at, account_id, order_id, replaces_serial, profile, no_rev_avail, group_name, labels, ' +
  'predecessor_serial';

export type InventoryCertificateRow = CertificateRow & { predecessor_serial: string | null };

/** The columns qualified with `alias` (statements that join certificates to other tables). */
export function certificateColumns(alias: string): string {
  return qualified(CERTIFICATE_COLUMNS, alias);
}

export function linkedFromRow(row: InventoryCertificateRow): LinkedCertificate {
  const certificate = certificateFromRow(row);
  return row.predecessor_serial === null ? { certificate } : { certificate, predecessorSerial: row.predecessor_serial };
}
