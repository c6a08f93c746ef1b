import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  certificateFileText,
  describeResult,
  requireTools,
  runCommand,
  startChalltestsrv,
  startInteropChancery,
  verifyChain,
  type CommandResult,
} from '../helpers/interop.js';

/**
 * lego 4.x against a running Chancery: `run` with http-01 (lego's own server on CHANCERY_HTTP01_PORT),
 * tls-alpn-01 (on CHANCERY_TLSALPN01_PORT), dns-01 through pebble-challtestsrv (lego's exec provider
 * writes TXT records with challtestsrv's management API; lego's propagation check and Chancery's
 * validator both ask challtestsrv), both key types, a wildcard; then `revoke`. openssl judges each chain.
 */
const tools = requireTools(t, ['lego', 'pebble-challtestsrv', 'openssl', 'curl']);
if (tools) {
  const dns = await startChalltestsrv(tools['pebble-challtestsrv'], t);
  const chancery = await startInteropChancery(t, { dnsResolver: dns.resolver });
  const legoPath = join(chancery.workDir, 'lego');

  // lego's exec DNS provider runs `EXEC_PATH present|cleanup <fqdn> <value>` (default, non-RAW mode).
  const execScript = join(chancery.workDir, 'lego-dns-exec.sh');
  await writeFile(
    execScript,
    [
      '#!/bin/sh',
      '# lego exec DNS provider -> pebble-challtestsrv management API',
      'set -eu',
      `MGMT='${dns.management}'`,
      'case "$1" in',
      `  present) exec '${tools.curl}' -sSf --max-time 5 -X POST -d "{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}" "$MGMT/set-txt" ;;`,
      `  cleanup) exec '${tools.curl}' -sSf --max-time 5 -X POST -d "{\\"host\\":\\"$2\\"}" "$MGMT/clear-txt" ;;`,
      '  *) exit 0 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  await chmod(execScript, 0o755);

  const env: Record<string, string> = {
    // lego trusts exactly this bundle for the ACME server's TLS: our root.
    LEGO_CA_CERTIFICATES: chancery.rootPem,
    EXEC_PATH: execScript,
    EXEC_PROPAGATION_TIMEOUT: '30',
    EXEC_POLLING_INTERVAL: '1',
    // The exec provider solves authorizations one after the other, sleeping this long (default 60 s) between.
    EXEC_SEQUENCE_INTERVAL: '1',
  };

  function lego(global: string[], command: string[]): Promise<CommandResult> {
    return runCommand(
      tools!.lego,
      ['--server', chancery.directory, '--path', legoPath, '--email', 'x@example.internal', '--accept-tos', ...global, ...command],
      { env, timeoutMs: 120_000 },
    );
  }

  function failureReport(result: CommandResult): string {
    return `${describeResult(result)}\n--- chancery output (tail) ---\n${chancery.output().slice(-4000)}`;
  }

  /** lego names files after the first domain, with "*" written as "_". */
  function files(domain: string): { crt: string; issuer: string } {
    const base = join(legoPath, 'certificates', domain.replace(/^\*/, '_'));
    return { crt: `${base}.crt`, issuer: `${base}.issuer.crt` };
  }

  const issued: string[] = [];

  interface Case {
    title: string;
    domains: string[];
    keyType: 'ec256' | 'rsa2048';
    solver: string[];
  }
  const http = ['--http', '--http.port', `127.0.0.1:${chancery.http01Port}`];
  const tls = ['--tls', '--tls.port', `127.0.0.1:${chancery.tlsAlpn01Port}`];
  // lego's propagation check still queries challtestsrv (--dns.resolvers) for the TXT record before it
  // answers the challenge; --dns.disable-cp skips the authoritative-nameserver round, which needs SOA/NS
  // answers challtestsrv does not give ("could not determine the zone"). Chancery's validator reads the
  // record from challtestsrv too (CHANCERY_DNS_RESOLVERS): the only place it exists.
  const dns01 = ['--dns', 'exec', '--dns.resolvers', dns.resolver, '--dns.disable-cp'];
  const cases: Case[] = [
    { title: 'http-01, ec256', domains: ['lego-http.test'], keyType: 'ec256', solver: http },
    { title: 'http-01, rsa2048', domains: ['lego-http-rsa.test'], keyType: 'rsa2048', solver: http },
    { title: 'tls-alpn-01, ec256', domains: ['lego-tls.test'], keyType: 'ec256', solver: tls },
    { title: 'tls-alpn-01, rsa2048', domains: ['lego-tls-rsa.test'], keyType: 'rsa2048', solver: tls },
    { title: 'dns-01 via pebble-challtestsrv, ec256', domains: ['lego-dns.test'], keyType: 'ec256', solver: dns01 },
    { title: 'dns-01 wildcard *.wild.test plus wild.test, rsa2048', domains: ['*.wild.test', 'wild.test'], keyType: 'rsa2048', solver: dns01 },
  ];

  for (const c of cases) {
    await t.test(`run: ${c.title}`, async (tt) => {
      const result = await lego([...c.domains.flatMap((d) => ['-d', d]), '--key-type', c.keyType, ...c.solver], ['run']);
      if (result.code !== 0 || result.timedOut) {
        tt.fail('lego run exits 0', { report: failureReport(result) });
        return;
      }
      tt.pass('lego run exits 0');
      const { crt, issuer } = files(c.domains[0]!);
      const verdict = await verifyChain(chancery.rootPem, issuer, crt);
      tt.ok(verdict.ok, 'openssl verifies the certificate with lego\'s issuer file against our root', { output: verdict.output });
      const text = await certificateFileText(crt);
      for (const domain of c.domains) tt.ok(text.includes(`DNS:${domain}`), `the certificate names ${domain}`);
      if (c.keyType === 'ec256') tt.match(text, /id-ecPublicKey[\s\S]*prime256v1|ASN1 OID: prime256v1/, 'an ECDSA P-256 key');
      else tt.match(text, /rsaEncryption[\s\S]*Public-Key: \(2048 bit\)/, 'an RSA 2048 key');
      // lego 4.9 sends no profile (draft-ietf-acme-profiles): it gets the default, tls-server.
      tt.match(text, /X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\s*\n/, 'the tls-server profile: serverAuth only');
      tt.match(text, /CRL Distribution Points/, 'with its revocation published');
      issued.push(c.domains[0]!);
    });
  }

  await t.test('revoke', { skip: issued.length > 0 ? false : 'nothing was issued' }, async (tt) => {
    for (const [i, domain] of issued.entries()) {
      // --reason 1 is keyCompromise (RFC 5280 §5.3.1); the others are revoked without a reason code.
      const reason = i === 0 ? ['--reason', '1'] : [];
      const result = await lego(['-d', domain], ['revoke', '--keep', ...reason]);
      tt.ok(result.code === 0 && !result.timedOut, `lego revoke ${domain} exits 0`, result.code === 0 ? {} : { report: failureReport(result) });
    }
    const again = await lego(['-d', issued[0]!], ['revoke', '--keep']);
    tt.not(again.code, 0, 'revoking the same certificate again is refused');
    tt.match(`${again.stdout}${again.stderr}`, /alreadyRevoked|already revoked/i, 'with alreadyRevoked', { output: describeResult(again) });
  });
}
