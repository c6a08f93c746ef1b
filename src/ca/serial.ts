import { randomBuffer } from '../core/random-pool.js';

/**
 * Certificate serial numbers: 16 CSPRNG octets with the top bit cleared, so the INTEGER is positive and
 * at most 20 octets (RFC 5280 §4.1.2.2), carrying 127 bits of entropy (CABF BR 7.1 asks for >= 64).
 * A zero first octet is replaced so the encoding stays 16 octets and the hex form has no leading zeros.
 */
const SERIAL_BYTES = 16;

export function randomSerial(): Buffer {
  const serial = randomBuffer(SERIAL_BYTES);
  serial[0] = serial[0]! & 0x7f || 0x01;
  return serial;
}

/** The CRL shard a serial belongs to (Boulder-style: fixed at issuance, embedded in the CRL DP). */
export function crlShardOf(serial: Uint8Array, shards: number): number {
  if (shards <= 1) return 0;
  const tail = serial.subarray(serial.length - 4);
  return Buffer.from(tail).readUInt32BE(0) % shards;
}

export const serialHex = (serial: Uint8Array): string => Buffer.from(serial).toString('hex');
