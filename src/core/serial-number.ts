/**
 * A certificate serial as Chancery stores and prints it: lower-case hex of the INTEGER's magnitude octets,
 * even length, no leading zero octets — what `openssl x509 -serial` prints. DER may carry one leading 00
 * octet to keep a positive INTEGER's top bit clear (X.690 §8.3.2); it is not part of the number.
 */
export function canonicalSerial(hex: string): string {
  const even = hex.length % 2 ? `0${hex}` : hex;
  return even.toLowerCase().replace(/^(00)+(?=..)/, '');
}

/**
 * Operator input (CLI, admin API): `3a:f0:...`, `0x3AF0...` or plain hex, up to 20 octets (RFC 5280
 * §4.1.2.2); the canonical form, or undefined when it is not a serial.
 */
export function parseSerialText(text: string): string | undefined {
  const hex = text.trim().replace(/^0x/i, '').replace(/:/g, '');
  return /^[0-9a-fA-F]{1,42}$/.test(hex) ? canonicalSerial(hex) : undefined;
}
