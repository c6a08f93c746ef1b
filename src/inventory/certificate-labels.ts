import type { IssuedCertificate } from '../core/certificate.js';
import { CaError } from '../core/errors.js';
import type { DomainEvents } from '../core/events.js';
import type { Labels } from '../core/group.js';
import type { AdminPrincipal } from '../core/principal.js';
import type { Queryable } from '../db/database.js';
import { inScope, type Scope } from '../policy/admin-rbac.js';
import { labelsProblem } from '../policy/labels.js';
import { changeWithEvent, type StoreAccess } from './change-with-event.js';

export interface LabelChange {
  serial: string;
  group?: string;
  before: Labels;
  after: Labels;
}

export interface CertificateLabelStore {
  findBySerial(serial: string): Promise<IssuedCertificate | undefined>;
  /** Replaces the labels; undefined when there is no such certificate. */
  replace(serial: string, labels: Labels): Promise<LabelChange | undefined>;
}

/**
 * A certificate's labels (owner, application, environment, ... — the inventory record, never the X.509
 * certificate), edited through the admin API: the whole set replaced at once, checked by the label rules
 * (policy/labels.ts) before anything is written, recorded by a `certificate.labels.changed` event in the
 * change's transaction (the audit entry, DESIGN.md rule 8). A group-admin edits only its groups'
 * certificates; a certificate recorded with no group is an admin's.
 */
export class CertificateLabels {
  constructor(private readonly deps: { access: StoreAccess<CertificateLabelStore>; events: DomainEvents<Queryable> }) {}

  async replace(by: AdminPrincipal, scope: Scope, serial: string, labels: Labels): Promise<LabelChange> {
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string')) {
      throw new CaError('malformed', 'labels: an object of text values');
    }
    const problem = labelsProblem(labels);
    if (problem !== undefined) throw new CaError('malformed', `labels: ${problem}`);
    const certificate = await this.deps.access.stores.findBySerial(serial);
    if (certificate === undefined || !inScope(scope, certificate.group)) throw new CaError('notFound', `no certificate with serial ${serial}`);
    const change = await changeWithEvent(
      this.deps,
      'certificate.labels.changed',
      (store) => store.replace(serial, labels),
      (done) =>
        done === undefined
          ? undefined
          : { type: 'certificate.labels.changed', serial, ...(done.group === undefined ? {} : { group: done.group }), before: done.before, after: done.after, actor: by.actor },
    );
    if (change === undefined) throw new CaError('notFound', `no certificate with serial ${serial}`);
    return change;
  }
}
