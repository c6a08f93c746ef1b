import type { RevokedEntryPage } from '../core/revoked-entries.js';
import type { RevocationReason } from '../core/certificate.js';
import { CaError } from '../core/errors.js';
import { generalizedTime, TAG, tlv, type Der } from './der/der-writer.js';
import { extension } from './extensions.js';
import { OID } from './oids.js';

/** One revoked certificate, as the CRL needs it (tests and small lists). */
export interface CrlEntry {
  /** Hex of the serial's unsigned magnitude, as IssuedCertificate.serial. */
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
  invalidityDate?: Date | undefined;
}

/** Entries column by column, as the database reader produces them. */
export type CrlEntryColumns = RevokedEntryPage;

/** Where the encoded entries are: buffer[start, end), with `front` free octets before and room after. */
export interface EncodedEntries {
  buffer: Buffer;
  start: number;
  end: number;
  count: number;
}

export interface EncoderOptions {
  /** Octets kept free before the first entry (the TBSCertList's head is written there afterwards). */
  front?: number;
  /** Octets kept free after the last entry (extensions, signature). */
  tail?: number;
  /** Entries expected (the previous CRL's count): sizes the buffer so it need not grow. */
  expectedEntries?: number;
}

/**
 * Encodes revokedCertificates entries (RFC 5280 §5.1.2.6) straight into one buffer, one entry at a time:
 *
 *   SEQUENCE { userCertificate INTEGER, revocationDate Time, crlEntryExtensions Extensions OPTIONAL }
 *
 * No object tree per entry (pkijs needs ~15 s and 1 GB for 100k entries; asn1js refuses more than 1k
 * without maxNodes). The buffer leaves room before the entries for the TBSCertList's head and after them
 * for its extensions and the signature, so the signed CRL is assembled where the entries already are,
 * never copied. It is sized for `expectedEntries` at the longest entry Chancery writes (82 octets): on
 * Linux the pages of a large allocation that are never written cost no memory, so a generous estimate is
 * free and a million entries take ~50 MB, not twice that. It doubles (one copy) if the estimate was short.
 */
export class RevokedCertificatesEncoder {
  private buffer: Buffer;
  private readonly start: number;
  private readonly tail: number;
  private offset: number;
  private entries = 0;
  /** Scratch for hex decoding of CrlEntry serials. */
  private readonly serialScratch = Buffer.allocUnsafe(MAX_SERIAL_OCTETS + 1);
  /** The date digits of the last day written: entries revoked on one day share them (most of a CRL). */
  private cachedDay = Number.NaN;
  private readonly cachedDigits = Buffer.alloc(8); // YYYYMMDD

  constructor(options: EncoderOptions = {}) {
    this.start = options.front ?? 0;
    this.tail = options.tail ?? 0;
    const expected = Math.max(0, Math.ceil((options.expectedEntries ?? 0) * 1.05)) + 1024;
    this.buffer = Buffer.allocUnsafe(this.start + expected * TYPICAL_MAX_ENTRY + this.tail);
    this.offset = this.start;
  }

  get count(): number {
    return this.entries;
  }

  add(entry: CrlEntry): void {
    const hex = entry.serial.length % 2 === 0 ? entry.serial : `0${entry.serial}`;
    if (hex.length === 0 || hex.length > MAX_SERIAL_OCTETS * 2) throw badSerial(entry.serial);
    const decoded = this.serialScratch.write(hex, 0, 'hex');
    if (decoded * 2 !== hex.length) throw badSerial(entry.serial);
    const invalidity = entry.invalidityDate;
    this.write(
      this.serialScratch,
      0,
      decoded,
      Math.floor(entry.revokedAt.getTime() / 1000),
      entry.reason,
      invalidity === undefined ? Number.NaN : Math.floor(invalidity.getTime() / 1000),
      invalidity !== undefined,
    );
  }

  addColumns(page: CrlEntryColumns): void {
    const { count, serials, serialLengths, revokedAt, reasons, invalidityDates } = page;
    if (serialLengths.length < count || revokedAt.length < count || reasons.length < count || invalidityDates.length < count) {
      throw new CaError('serverInternal', 'CRL entry page is shorter than its count');
    }
    let start = 0;
    for (let i = 0; i < count; i += 1) {
      const end = start + serialLengths[i]!;
      if (end > serials.length) throw new CaError('serverInternal', 'CRL entry page serials are truncated');
      const invalidity = invalidityDates[i]!;
      this.write(serials, start, end, revokedAt[i]!, reasons[i]!, invalidity, invalidity === invalidity /* not NaN */);
      start = end;
    }
  }

  /** The entries' encodings. The encoder must not be used afterwards: the buffer is handed over, not copied. */
  finish(): EncodedEntries {
    const done = { buffer: this.buffer, start: this.start, end: this.offset, count: this.entries };
    this.buffer = Buffer.alloc(0);
    return done;
  }

  /** One entry from the serial's magnitude octets src[start, end) and times in epoch seconds. */
  private write(src: Uint8Array, start: number, end: number, revokedSeconds: number, reasonCode: number, invalidSeconds: number, hasInvalidity: boolean): void {
    // userCertificate: the serial as a minimal positive INTEGER (X.690 §8.3.2; RFC 5280 §4.1.2.2).
    if (end <= start || end - start > MAX_SERIAL_OCTETS) throw new CaError('serverInternal', `certificate serial of ${end - start} octets in the database`);
    while (start < end - 1 && src[start] === 0) start += 1;
    const pad = src[start]! & 0x80 ? 1 : 0;
    const serialLength = end - start + pad;

    // RFC 5280 §5.1.2.6 -> §5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050.
    if (!(revokedSeconds >= MIN_SECONDS && revokedSeconds <= MAX_SECONDS)) {
      throw new CaError('serverInternal', `revocation date ${revokedSeconds} s cannot be encoded`);
    }
    const utc = revokedSeconds >= UTC_TIME_FROM && revokedSeconds < UTC_TIME_UNTIL;
    const timeLength = utc ? 13 : 15;

    // RFC 5280 §5.3.1: "the reason code CRL entry extension SHOULD be absent instead of using the
    // unspecified (0) reasonCode value". removeFromCRL (8) "is for use with delta CRLs only" — a base CRL
    // entry carrying it would tell relying parties the certificate is not revoked, so it is left out too.
    let reason: Der | undefined;
    if (reasonCode !== 0 && reasonCode !== 8) {
      reason = REASON_EXTENSIONS[reasonCode];
      if (reason === undefined) throw new CaError('serverInternal', `revocation reason ${reasonCode} in the database`);
    }
    if (hasInvalidity && !(invalidSeconds >= MIN_SECONDS && invalidSeconds <= MAX_SECONDS)) {
      throw new CaError('serverInternal', `invalidity date ${invalidSeconds} s cannot be encoded`);
    }
    const extensionsLength = (reason === undefined ? 0 : reason.length) + (hasInvalidity ? INVALIDITY_LENGTH : 0);

    const content = 2 + serialLength + 2 + timeLength + (extensionsLength === 0 ? 0 : 2 + extensionsLength);
    // Every entry fits a one-octet length: at most 2+65 (serial) + 2+15 (time) + 2+12+26 (extensions) = 124.
    if (content >= 0x80) throw new CaError('serverInternal', 'CRL entry too long');
    const total = 2 + content;
    if (this.offset + total + this.tail > this.buffer.length) this.grow(total);

    const out = this.buffer;
    let at = this.offset;
    out[at++] = TAG.SEQUENCE;
    out[at++] = content;

    out[at++] = TAG.INTEGER;
    out[at++] = serialLength;
    if (pad) out[at++] = 0;
    for (let i = start; i < end; i += 1) out[at++] = src[i]!;

    out[at++] = utc ? TAG.UTC_TIME : TAG.GENERALIZED_TIME;
    out[at++] = timeLength;
    at = this.writeTime(out, at, revokedSeconds, utc);

    if (extensionsLength > 0) {
      out[at++] = TAG.SEQUENCE;
      out[at++] = extensionsLength;
      if (reason !== undefined) at += reason.copy(out, at);
      if (hasInvalidity) {
        // RFC 5280 §5.3.2: invalidityDate is always GeneralizedTime.
        at += INVALIDITY_PREFIX.copy(out, at);
        at = this.writeTime(out, at, invalidSeconds, false);
      }
    }
    this.offset = at;
    this.entries += 1;
  }

  /** YYMMDDHHMMSSZ (UTCTime) or YYYYMMDDHHMMSSZ (GeneralizedTime), UTC, whole seconds (RFC 5280 §4.1.2.5). */
  private writeTime(out: Buffer, at: number, seconds: number, utc: boolean): number {
    const day = Math.floor(seconds / 86_400);
    if (day !== this.cachedDay) {
      const { year, month, dayOfMonth } = civilFromDays(day);
      const d = this.cachedDigits;
      two(d, 0, (year / 100) | 0);
      two(d, 2, year % 100);
      two(d, 4, month);
      two(d, 6, dayOfMonth);
      this.cachedDay = day;
    }
    const d = this.cachedDigits;
    for (let i = utc ? 2 : 0; i < 8; i += 1) out[at++] = d[i]!;
    const inDay = seconds - day * 86_400;
    const hours = (inDay / 3600) | 0;
    const minutes = ((inDay - hours * 3600) / 60) | 0;
    two(out, at, hours);
    two(out, at + 2, minutes);
    two(out, at + 4, inDay - hours * 3600 - minutes * 60);
    out[at + 6] = 0x5a; // 'Z'
    return at + 7;
  }

  private grow(needed: number): void {
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.offset + needed + this.tail));
    this.buffer.copy(grown, this.start, this.start, this.offset);
    this.buffer = grown;
  }
}

/** RFC 5280 §4.1.2.2 caps serials at 20 octets; Chancery's own are 16. Far beyond that is corrupt data. */
const MAX_SERIAL_OCTETS = 64;
/** The longest entry for a serial of up to 20 octets: 2 + (2+21) + (2+15) + 2 + 12 + 26. */
const TYPICAL_MAX_ENTRY = 82;
/** 1950-01-01 and 2050-01-01 (UTCTime's window) and the years GeneralizedTime's four digits can carry. */
const UTC_TIME_FROM = Date.UTC(1950, 0, 1) / 1000;
const UTC_TIME_UNTIL = Date.UTC(2050, 0, 1) / 1000;
const MIN_SECONDS = -62_167_219_200; // 0000-01-01T00:00:00Z
const MAX_SECONDS = 253_402_300_799; // 9999-12-31T23:59:59Z

function badSerial(serial: string): CaError {
  return new CaError('serverInternal', `unexpected certificate serial in the database: ${JSON.stringify(serial.slice(0, 80))}`);
}

/** reasonCode (RFC 5280 §5.3.1) entry extensions, pre-encoded per code: Extension { id, OCTET STRING { ENUMERATED } }. */
const REASON_EXTENSIONS: (Der | undefined)[] = [];
for (const code of [1, 2, 3, 4, 5, 6, 9, 10]) {
  REASON_EXTENSIONS[code] = extension(OID.crlReason, false, tlv(TAG.ENUMERATED, Buffer.from([code])));
}

/** invalidityDate (RFC 5280 §5.3.2): everything up to the 15 GeneralizedTime characters. */
const INVALIDITY_SAMPLE = extension(OID.invalidityDate, false, generalizedTime(new Date(0)));
const INVALIDITY_LENGTH = INVALIDITY_SAMPLE.length;
const INVALIDITY_PREFIX = INVALIDITY_SAMPLE.subarray(0, INVALIDITY_LENGTH - 15);

function two(out: Uint8Array, at: number, value: number): void {
  out[at] = 0x30 + ((value / 10) | 0);
  out[at + 1] = 0x30 + (value % 10);
}

/** Proleptic Gregorian date of a day number since 1970-01-01 (H. Hinnant's civil_from_days). */
export function civilFromDays(days: number): { year: number; month: number; dayOfMonth: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const dayOfMonth = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, dayOfMonth };
}
