/**
 * A page of one CRL scope's revoked certificates, column by column (RFC 5280 §5.1.2.6 entries): db/ reads
 * them so, revocation/ passes them on and ca/ encodes them so. No object per certificate: at a million
 * entries the objects would cost more than encoding the whole CRL.
 */
export interface RevokedEntryPage {
  count: number;
  /** The serials' unsigned big-endian magnitudes back to back, in entry order. */
  serials: Uint8Array;
  /** Octets of each serial in `serials`. */
  serialLengths: Uint16Array;
  /** Revocation dates, whole seconds since the epoch (UTC). */
  revokedAt: Float64Array;
  /** RFC 5280 §5.3.1 CRLReason codes (RevocationReason). */
  reasons: Uint16Array;
  /** Invalidity dates (RFC 5280 §5.3.2), whole seconds since the epoch; NaN where there is none. */
  invalidityDates: Float64Array;
}
