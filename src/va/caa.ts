import type { CaaRecord as NodeCaaRecord } from 'node:dns';
import type { Problem } from '../core/errors.js';
import type { ChallengeType } from '../core/order.js';
import { makeDnsResolver, runAttempt, ValidationFailure } from './attempt.js';
import { createDnsResolverPool } from './dns-resolver-pool.js';

/**
 * CAA (RFC 8659) with the ACME account and method bindings of RFC 8657: whether the DNS lets this CA issue
 * for a name. Checked when an authorization is validated, and again at finalize when that validation is
 * older than validation.caa.recheckHours (authorizations are reused for up to 30 days, CAA may have changed).
 */

/** One CAA resource record: flags bit 7 is the Issuer Critical flag (RFC 8659 §4.1). */
export interface CaaRecord {
  critical: boolean;
  tag: string;
  value: string;
}

export interface CaaRequest {
  /** The DNS name (for a wildcard authorization its base name, without "*."). */
  name: string;
  wildcard: boolean;
  /** RFC 8657 §3: the account's URL, matched against an accounturi parameter. */
  accountUri?: string;
  /** RFC 8657 §4: the ACME method that proved control, matched against a validationmethods parameter. */
  method?: ChallengeType;
}

export type CaaVerdict = { permitted: true; detail: string } | { permitted: false; detail: string };

export type CaaOutcome = { ok: true; detail: string } | { ok: false; problem: Problem; retryable: boolean };

export interface CaaChecker {
  check(request: CaaRequest): Promise<CaaOutcome>;
}

/** Property tags RFC 8659 §4 and its registry define; an unknown one with the critical flag forbids issuance. */
const KNOWN_TAGS = new Set(['issue', 'issuewild', 'iodef', 'contactemail', 'contactphone', 'issuemail', 'issuevmc']);

// RFC 8659 §4.2 grammar (issuer-domain-name, parameters).
const LABEL = '[A-Za-z0-9](?:-*[A-Za-z0-9])*';
const ISSUER_DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const PARAMETER = new RegExp(`^(${LABEL})[ \\t]*=[ \\t]*([\\x21-\\x3a\\x3c-\\x7e]*)$`);

/**
 * An issue/issuewild value: issuer domain name (may be empty: nobody) and parameters, or undefined when it
 * does not follow the grammar — such a property authorizes no one (RFC 8659 §4.2).
 */
export function parseIssueValue(value: string): { issuer: string; parameters: Map<string, string> } | undefined {
  const semicolon = value.indexOf(';');
  const issuer = (semicolon === -1 ? value : value.slice(0, semicolon)).trim();
  if (issuer !== '' && !ISSUER_DOMAIN.test(issuer)) return undefined;
  const parameters = new Map<string, string>();
  if (semicolon !== -1) {
    const rest = value.slice(semicolon + 1).trim();
    if (rest !== '') {
      for (const part of rest.split(';')) {
        const match = PARAMETER.exec(part.trim());
        if (!match) return undefined;
        parameters.set(match[1]!.toLowerCase(), match[2]!);
      }
    }
  }
  return { issuer: issuer.toLowerCase(), parameters };
}

/**
 * RFC 8659 §4 on the relevant record set (undefined: none anywhere up the tree, so issuance is permitted).
 * `identities` are this CA's issuer domain names (acme.caaIdentities).
 */
export function evaluateCaa(set: { name: string; records: readonly CaaRecord[] } | undefined, request: CaaRequest, identities: readonly string[]): CaaVerdict {
  if (set === undefined) return { permitted: true, detail: `no CAA records for ${request.name} or its parents` };
  const unknownCritical = set.records.find((r) => r.critical && !KNOWN_TAGS.has(r.tag.toLowerCase()));
  if (unknownCritical) {
    return { permitted: false, detail: `CAA at ${set.name} has a critical property "${unknownCritical.tag}" this CA does not understand (RFC 8659 §4.1)` };
  }
  const issue = set.records.filter((r) => r.tag.toLowerCase() === 'issue');
  const issuewild = set.records.filter((r) => r.tag.toLowerCase() === 'issuewild');
  // §4.3: for a wildcard, issuewild decides when present; otherwise issue does for both.
  const relevant = request.wildcard && issuewild.length > 0 ? issuewild : issue;
  const tag = request.wildcard && issuewild.length > 0 ? 'issuewild' : 'issue';
  if (relevant.length === 0) return { permitted: true, detail: `CAA at ${set.name} has no ${tag} property` };
  const ours = new Set(identities.map((identity) => identity.toLowerCase()));
  const reasons: string[] = [];
  for (const record of relevant) {
    const parsed = parseIssueValue(record.value);
    if (parsed === undefined) {
      reasons.push(`malformed ${tag} "${record.value.slice(0, 80)}"`);
      continue;
    }
    if (!ours.has(parsed.issuer)) {
      reasons.push(parsed.issuer === '' ? `${tag} ";" forbids every CA` : `${tag} names ${parsed.issuer}`);
      continue;
    }
    const accountUri = parsed.parameters.get('accounturi');
    if (accountUri !== undefined && accountUri !== request.accountUri) {
      reasons.push(`${tag} ${parsed.issuer} is bound to another account (accounturi, RFC 8657 §3)`);
      continue;
    }
    const methods = parsed.parameters.get('validationmethods');
    if (methods !== undefined && (request.method === undefined || !methods.split(',').map((m) => m.trim()).includes(request.method))) {
      reasons.push(`${tag} ${parsed.issuer} allows only ${methods} (validationmethods, RFC 8657 §4)`);
      continue;
    }
    return { permitted: true, detail: `CAA at ${set.name} authorizes ${parsed.issuer}` };
  }
  return { permitted: false, detail: `CAA records at ${set.name} do not authorize this CA (${[...ours].join(', ')}): ${reasons.join('; ')}` };
}

/** Looks up CAA at one name: the records, or [] for NXDOMAIN / no CAA; throws other failures. */
export type CaaLookup = (name: string) => Promise<CaaRecord[]>;

/**
 * RFC 8659 §3: the relevant record set is the first non-empty CAA set found from the name up towards the
 * root (CNAMEs are followed by the resolver). The root itself is not asked.
 */
export async function relevantCaaSet(name: string, lookup: CaaLookup): Promise<{ name: string; records: CaaRecord[] } | undefined> {
  const labels = name.replace(/\.$/, '').toLowerCase().split('.');
  for (let i = 0; i < labels.length; i += 1) {
    const candidate = labels.slice(i).join('.');
    const records = await lookup(candidate);
    if (records.length > 0) return { name: candidate, records };
  }
  return undefined;
}

/** node:dns answers CAA as { critical, <tag>: value }. */
function fromNode(record: NodeCaaRecord): CaaRecord | undefined {
  const entries = Object.entries(record).filter(([key]) => key !== 'critical');
  if (entries.length !== 1 || typeof entries[0]![1] !== 'string') return undefined;
  return { critical: (Number(record.critical) & 128) !== 0, tag: entries[0]![0], value: entries[0]![1] as string };
}

const ABSENT = new Set(['ENOTFOUND', 'ENODATA']);

export function createCaaChecker(options: { identities: readonly string[]; dnsResolvers: string[]; timeoutMs: number }): CaaChecker {
  const resolvers = createDnsResolverPool(() => makeDnsResolver(options.dnsResolvers, options.timeoutMs));
  return {
    async check(request) {
      const outcome = await runAttempt(options.timeoutMs, async (signal) => {
        const set = await resolvers.use(signal, (resolver) =>
          relevantCaaSet(request.name, async (name) => {
            try {
              return (await resolver.resolveCaa(name)).map(fromNode).filter((r): r is CaaRecord => r !== undefined);
            } catch (error) {
              const code = (error as NodeJS.ErrnoException).code ?? 'error';
              if (ABSENT.has(code)) return [];
              // RFC 8659 §3: a lookup that fails (not "no records") must not be read as permission.
              throw new ValidationFailure('dns', `CAA lookup for ${name} failed (${code}); issuance waits until it succeeds`, true);
            }
          }),
        );
        const verdict = evaluateCaa(set, request, options.identities);
        if (!verdict.permitted) throw new ValidationFailure('caa', verdict.detail, false);
        return { valid: true as const, detail: verdict.detail };
      });
      return outcome.valid ? { ok: true, detail: outcome.detail ?? 'CAA permits' } : { ok: false, problem: outcome.problem, retryable: outcome.retryable };
    },
  };
}
