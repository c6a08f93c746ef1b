import { CaError } from '../../core/errors.js';

/**
 * pkcs11js reports a failed call as an Error whose message is the bare return-value name ("CKR_PIN_INCORRECT",
 * PKCS#11 Base v2.40 §3.6 CK_RV). That name is the only part of a native error worth showing: it never holds
 * arguments (so never a PIN), and it is what an operator searches the HSM vendor's manual for.
 */
export function ckrName(error: unknown): string | undefined {
  if (error instanceof Error && /^CKR_[A-Z0-9_]+$/.test(error.message)) return error.message;
  return undefined;
}

/** A CaError('keyStore') that names the failed step and the CKR_* code, keeping the native error as cause. */
export function keyStoreError(what: string, error: unknown): CaError {
  if (error instanceof CaError) return error;
  // Non-CKR errors come from our own checks (unsupported curve, malformed point) or from graphene's argument
  // handling; their messages describe data, never the PIN, which only ever reaches C_Login.
  const reason = ckrName(error) ?? (error instanceof Error && error.message !== '' ? error.message : 'unexpected error');
  return new CaError('keyStore', `${what}: ${reason}`, { cause: error });
}
