#!/usr/bin/env node
import { loadConfig } from '../config/load-config.js';
import { isCaError } from '../core/errors.js';
import { auditCommand } from './commands/audit.js';
import { initCommand } from './commands/init.js';
import { migrateCommand } from './commands/migrate.js';
import { eabCommand } from './commands/eab.js';
import { adminCommand } from './commands/admin.js';
import { certsCommand } from './commands/certs.js';
import { CERTS_SEARCH_USAGE, CERTS_SEARCH_VERBS, certsSearchCommand } from './commands/certs-search.js';
import { accountsCommand } from './commands/accounts.js';
import { policyCommand } from './commands/policy.js';
import { ocspCommand } from './commands/ocsp.js';
import { crlCommand } from './commands/crl.js';
import { revokeCommand } from './commands/revoke.js';
import { serveCommand } from './commands/serve.js';
import { reportCommand } from './commands/report.js';
import { webhookCommand } from './commands/webhook.js';
import { INCIDENT_USAGE, incidentCommand } from './commands/incident.js';

const USAGE = `Usage: chancery <command>

Commands:
  init      create the root and intermediate CA (refuses if one exists)
  serve     serve an existing CA
  start     init if no CA exists, then serve (what \`npm start\` runs)
  migrate   apply database migrations
  revoke --serial HEX --reason NAME [--invalidity-date ISO-8601]
            revoke a certificate (OCSP and CRL updated before it returns)
  crl generate [--issuer ID --shard N]
            generate and publish CRLs now
  ocsp refresh
            rotate due responder certificates and re-sign due OCSP responses now
  eab create [--group NAME] [--label key=value ...]
            create an External Account Binding credential for a group (prints the HMAC key once)
  policy export
            print every group and its policy as YAML (the file policy apply takes)
  policy apply FILE [--dry-run]
            make the groups what FILE says: checked first, changes printed, applied in one transaction
  audit verify [--expect-head FILE]
            check the audit log's hash chain and signed checkpoints; names the first bad entry
  audit export --since WHEN [--until WHEN] [--actor A] [--action A] [--subject S]
            the audit log's entries as JSON lines
  eab list [--group NAME] | eab revoke KID
            list EAB credentials; revoke an unused one
  certs list [--status valid|revoked] [--group NAME] [--expiring 30d] | certs show SERIAL
            certificates, newest first (or soonest to expire)
${CERTS_SEARCH_USAGE}
  accounts list [--group NAME] [--status S] | accounts deactivate ID
            ACME accounts
  admin token create --role admin|group-admin|auditor [--group NAME]... [--expires 90d]
            an admin API token (printed once; 90 days unless --expires, at most a year)
  admin token list | admin token revoke ID
  admin operator bind --serial HEX --role ROLE [--group NAME]... | operator list | operator unbind SPKI
            bind an operator-profile client certificate to a role (mTLS on the admin listener)
  report health [--days N] [--group NAME]
            renewal health by group with its owners: certificates overdue, expiring, expired unreplaced
  report keys shared|weak [--group NAME] | report accounts --not-seen DAYS [--group NAME]
            subject keys in several accounts or groups, or weaker than today's key policy; idle accounts
${INCIDENT_USAGE}
  webhook add --url URL [--group NAME] [--events E,...] | webhook list | webhook remove ID | webhook deliveries ID
            notification webhooks (the signing secret is printed once)

Commands that read or change data (eab, revoke, certs, accounts, admin, policy, report, webhook, incident) go through the admin API:
the running server's socket (<dataDir>/admin.sock) when one serves this data directory, else in this
process. Settings come from config/default.yaml, the file named by CHANCERY_CONFIG and CHANCERY_* variables;
config/chancery.example.yaml documents them all.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const values = { help: command === '--help' || command === '-h' };
  if (values.help || !command || command === 'help') {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 2;
  }
  const config = loadConfig();
  switch (command) {
    case 'init':
      await initCommand(config);
      return 0;
    case 'migrate':
      await migrateCommand(config);
      return 0;
    case 'revoke':
      await revokeCommand(config, rest);
      return 0;
    case 'crl':
      await crlCommand(config, rest);
      return 0;
    case 'ocsp':
      await ocspCommand(config, rest);
      return 0;
    case 'eab':
      await eabCommand(config, rest);
      return 0;
    case 'admin':
      await adminCommand(config, rest);
      return 0;
    case 'certs':
      if ((CERTS_SEARCH_VERBS as readonly string[]).includes(rest[0] ?? '')) await certsSearchCommand(config, rest);
      else await certsCommand(config, rest);
      return 0;
    case 'accounts':
      await accountsCommand(config, rest);
      return 0;
    case 'policy':
      await policyCommand(config, rest);
      return 0;
    case 'audit':
      await auditCommand(config, rest);
      return 0;
    case 'report':
      await reportCommand(config, rest);
      return 0;
    case 'webhook':
      await webhookCommand(config, rest);
      return 0;
    case 'incident':
      await incidentCommand(config, rest);
      return 0;
    case 'serve':
      await serveCommand(config, { initIfNeeded: false });
      return -1;
    case 'start':
      await serveCommand(config, { initIfNeeded: true });
      return -1;
    default:
      process.stderr.write(`chancery: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code; // -1: a server is running; it exits when closed
  },
  (error: unknown) => {
    if (isCaError(error)) {
      process.stderr.write(`chancery: ${error.detail}\n`);
      process.exitCode = error.kind === 'badConfig' ? 2 : 1;
    } else {
      process.stderr.write(`chancery: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
