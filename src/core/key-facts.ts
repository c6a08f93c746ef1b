/**
 * What the key policy (policy/key-policy.ts) looks at, however the key arrived: SPKI in a CSR, a JWK in a
 * JWS. A core type so acme/ can describe an account key without importing policy/ (DESIGN.md layers).
 */
export type KeyFacts =
  | { family: 'rsa'; bits: number; publicExponent: bigint }
  /** `curve` in JOSE spelling (P-256, P-384, P-521) or as the source named it when unknown. */
  | { family: 'ec'; curve: string }
  | { family: 'ed25519' }
  | { family: 'other'; type: string };
