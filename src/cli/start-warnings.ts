/**
 * Lines the start banner adds for settings that suit one machine but not production. PostgreSQL or an HSM
 * says this is no longer a laptop: there, validation reaching loopback lets any name that resolves to
 * 127.0.0.1 aim the validator at the CA host's own services (RFC 8555 §10.2).
 */
export function startWarnings(facts: { allowLoopback: boolean; databaseDriver: string; keysBackend: string }): string[] {
  const productionLike = facts.databaseDriver === 'pg' || facts.keysBackend === 'pkcs11';
  if (!facts.allowLoopback || !productionLike) return [];
  return [
    '  warning: validation may connect to loopback (127.0.0.0/8, ::1): set CHANCERY_VALIDATION_ALLOW_LOOPBACK=false in production (docs/security.md)',
  ];
}
