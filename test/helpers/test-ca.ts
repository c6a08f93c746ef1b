import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caCertificateFactory } from '../../src/ca/ca-certificate-factory.js';
import { parseCsr } from '../../src/ca/csr.js';
import { buildIssuerContext } from '../../src/ca/issuer-context.js';
import { LeafCertificateBuilder } from '../../src/ca/leaf-certificate.js';
import { FakeClock, systemClock, type Clock } from '../../src/core/clock.js';
import type { IssuerRecord } from '../../src/core/certificate.js';
import { toPem } from '../../src/core/pem.js';
import { DEFAULT_PROFILE, type CertificateProfile } from '../../src/core/profile.js';
import { publicUrls } from '../../src/core/url-scheme.js';
import type { KeyAlgorithm } from '../../src/core/key-algorithm.js';
import type { KeyStore } from '../../src/keys/signer.js';
import { runCeremony } from '../../src/ca/ceremony.js';
import { CertificateIssuance, type IssuanceDeps } from '../../src/ra/certificate-issuance.js';
import { DomainEvents } from '../../src/core/events.js';
import type { Queryable } from '../../src/db/database.js';
import { MemoryCertificateStore, MemoryIssuers } from './memory-stores.js';

export const TEST_PUBLIC_URL = 'http://pki.test.internal:8080';

export interface TestCa {
  root: IssuerRecord;
  intermediate: IssuerRecord;
  builder: LeafCertificateBuilder;
  issuance: CertificateIssuance;
  store: MemoryCertificateStore;
  dir: string;
  rootPemPath: string;
  chainPemPath: string;
  clock: Clock;
}

/** A root + intermediate made by the real ceremony on the given KeyStore, with PEM files for openssl. */
export async function createTestCa(
  keys: KeyStore,
  options: {
    clock?: Clock;
    profile?: CertificateProfile;
    crlShards?: number;
    rootAlgorithm?: KeyAlgorithm;
    intermediateAlgorithm?: KeyAlgorithm;
    events?: DomainEvents<Queryable>;
    firstOcsp?: IssuanceDeps['firstOcsp'];
  } = {},
): Promise<TestCa> {
  const clock = options.clock ?? systemClock;
  const urls = publicUrls(TEST_PUBLIC_URL);
  const issuers = new MemoryIssuers();
  const { root, intermediate } = await runCeremony(
    { keys, issuers, certificates: caCertificateFactory, clock, urls },
    {
      organization: 'Chancery Test',
      rootAlgorithm: options.rootAlgorithm ?? 'ecdsa-p384',
      intermediateAlgorithm: options.intermediateAlgorithm ?? 'ecdsa-p256',
      rsaScheme: 'pkcs1',
      rootValidityDays: 3650,
      intermediateValidityDays: 1825,
    },
  );
  const signer = await keys.load(intermediate.keyName);
  if (!signer) throw new Error('intermediate key not found after ceremony');
  const crlShards = options.crlShards ?? 1;
  const profile = options.profile ?? DEFAULT_PROFILE;
  const context = buildIssuerContext({ id: intermediate.id, certificateDer: intermediate.der, signer, urls, crlShards });
  const builder = new LeafCertificateBuilder(context, profile, crlShards);
  const store = new MemoryCertificateStore();
  // The memory store has no transactions: the in-transaction phase runs against a handle that refuses SQL.
  const noSql: Queryable = { query: async () => Promise.reject(new Error('the memory store has no SQL')) };
  const issuance = new CertificateIssuance({
    signer: builder,
    parseCsr,
    store,
    transaction: (fn) => fn(noSql, store),
    events: options.events ?? new DomainEvents<Queryable>(),
    ...(options.firstOcsp ? { firstOcsp: options.firstOcsp } : {}),
    clock,
    profile,
  });
  const dir = await mkdtemp(join(tmpdir(), 'chancery-ca-'));
  const rootPemPath = join(dir, 'root.pem');
  const chainPemPath = join(dir, 'chain.pem');
  await writeFile(rootPemPath, toPem(root.der));
  await writeFile(chainPemPath, toPem(intermediate.der));
  return { root, intermediate, builder, issuance, store, dir, rootPemPath, chainPemPath, clock };
}

export { FakeClock };
