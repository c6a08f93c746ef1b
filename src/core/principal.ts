import type { Actor } from './audit.js';

/**
 * Who is calling the admin API (/admin/v1), once authenticated: an admin token, an operator's client
 * certificate, or the local CLI over the data directory's Unix socket. What each role may do is decided by
 * the pure table of policy/admin-rbac.ts; every change it makes is attributed to `actor` (DESIGN.md rule 8).
 */
export type AdminRole = 'admin' | 'group-admin' | 'auditor';
export const ADMIN_ROLES: readonly AdminRole[] = ['admin', 'group-admin', 'auditor'];

export function isAdminRole(value: string): value is AdminRole {
  return (ADMIN_ROLES as readonly string[]).includes(value);
}

export interface AdminPrincipal {
  actor: Actor;
  role: AdminRole;
  /** The groups a group-admin acts on; empty for admin and auditor (they see every group). */
  groups: readonly string[];
  via: 'token' | 'certificate' | 'local';
  /** When the credential stops working (a token's expiry, a certificate's notAfter); none for the local CLI. */
  expiresAt?: Date;
}

export const tokenActor = (tokenId: string): Actor => `token:${tokenId}`;
export const certificateActor = (name: string): Actor => `certificate:${name}`;

/** An admin API token as stored and listed: never the token itself (shown once), never its hash. */
export interface AdminToken {
  /** The token's public part (chy_<id>_...): what lists and audit entries name. */
  id: string;
  role: AdminRole;
  groups: string[];
  description: string;
  createdAt: Date;
  createdBy: Actor;
  expiresAt: Date;
  revokedAt?: Date;
  revokedBy?: Actor;
  /** Recorded at most once a minute. */
  lastUsedAt?: Date;
}

/** An operator's client certificate bound to a role (mTLS on the admin listener). */
export interface OperatorBinding {
  /** SHA-256 of the certificate's SubjectPublicKeyInfo, hex: the key the TLS handshake proves. */
  spkiSha256: string;
  name: string;
  role: AdminRole;
  groups: string[];
  /** The certificate the binding was made from. */
  serial: string;
  createdAt: Date;
  createdBy: Actor;
}

/** Who acted, as the audit log names them (core/audit.ts): re-exported for the events the admin API raises. */
export type { Actor as AdminActor } from './audit.js';
