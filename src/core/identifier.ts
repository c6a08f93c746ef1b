/** An identifier a certificate may name (RFC 8555 §9.7.7, RFC 8738 for ip). */
export type IdentifierType = 'dns' | 'ip';

export interface Identifier {
  type: IdentifierType;
  value: string;
}

export function identifierKey(id: Identifier): string {
  return `${id.type}:${id.value}`;
}
