import type { Test } from 'tap';
import { CaError, type CaErrorKind } from '../../src/core/errors.js';

/** Asserts that `promise` rejects with a CaError of `kind` whose detail matches `detail`; returns it. */
export async function expectCaError(t: Test, promise: Promise<unknown>, kind: CaErrorKind | CaErrorKind[], detail: RegExp): Promise<CaError | undefined> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof CaError)) {
      t.fail(`expected a CaError, got ${String(error)}`);
      return undefined;
    }
    const kinds = Array.isArray(kind) ? kind : [kind];
    t.ok(kinds.includes(error.kind), `kind ${error.kind} is one of ${kinds.join(', ')} (${error.detail})`);
    t.match(error.detail, detail);
    return error;
  }
  t.fail(`expected a ${String(kind)} CaError, but the call succeeded`);
  return undefined;
}
