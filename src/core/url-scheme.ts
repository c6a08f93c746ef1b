/**
 * The one place public URLs are built (DESIGN.md "URLs"): what goes into certificates (CRL DP, AIA) and
 * what the public listener serves must agree byte for byte.
 */
export interface PublicUrls {
  crl(issuerId: string, shard: number): string;
  rootCrl(): string;
  ocsp(): string;
  caIssuer(issuerId: string): string;
  rootPem(): string;
}

export function publicUrls(base: string): PublicUrls {
  const root = base.replace(/\/+$/, '');
  return {
    crl: (issuerId, shard) => `${root}/crl/${issuerId}/${shard}.crl`,
    rootCrl: () => `${root}/crl/root.crl`,
    ocsp: () => `${root}/ocsp`,
    caIssuer: (issuerId) => `${root}/ca/${issuerId}.der`,
    rootPem: () => `${root}/ca/root.pem`,
  };
}
