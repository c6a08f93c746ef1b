import { isIP } from 'node:net';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { DomainEvents } from '../core/events.js';
import { GROUP_NAME } from '../core/group.js';
import { newId } from '../core/ids.js';
import type { Page } from '../core/page.js';
import type { AdminPrincipal } from '../core/principal.js';
import { isNotificationType, NOTIFICATION_TYPES, type DeliveryStatus, type NotificationType, type Webhook, type WebhookDelivery } from '../core/webhook.js';
import type { Queryable } from '../db/database.js';
import { inScope, type Scope } from '../policy/admin-rbac.js';
import { changeWithEvent, type StoreAccess } from './change-with-event.js';
import { newWebhookSecret } from './webhook-signature.js';

export interface WebhookStore {
  insert(webhook: Webhook, secretSealed: Uint8Array): Promise<void>;
  findById(id: string): Promise<Webhook | undefined>;
  list(filter: { groups?: readonly string[]; includeRemoved?: boolean }, page: { cursor?: string; limit: number }): Promise<Page<Webhook>>;
  remove(id: string, at: Date, by: Webhook['createdBy']): Promise<Webhook | undefined>;
  deliveries(webhookId: string, filter: { status?: DeliveryStatus }, page: { cursor?: string; limit: number }): Promise<Page<WebhookDelivery>>;
}

/** Seals webhook secrets (keys/secret-box.ts under the installation passphrase; compose.ts passes it). */
export interface SecretSealer {
  seal(plaintext: Uint8Array, context: string): Uint8Array;
  open(sealed: Uint8Array, context: string): Uint8Array;
}

/** The validation network policy (va/network-policy.ts), as far as a webhook's address literal goes. */
export interface TargetPolicy {
  denies(address: string, port: number): string | undefined;
}

export interface NewWebhook {
  url: string;
  group?: string;
  events?: string[];
  description?: string;
}

/** The AAD a webhook's sealed secret is bound to: a sealed secret cannot be moved to another webhook. */
export function secretContext(webhookId: string): string {
  return `webhook:${webhookId}`;
}

const MAX_URL = 2048;

/**
 * Webhooks as administrators manage them. A webhook is a group's (it hears of that group's certificates) or
 * global (every certificate; an admin's alone). Its secret is made here, returned once to be shown once,
 * and stored sealed; it never appears in a list, a log or an error. Targets: https (http only with
 * notifications.allowHttp), no credentials in the URL, and an address the validation network policy allows —
 * checked here when the URL names an address, and on every delivery for whatever a name resolves to then.
 */
export class WebhookAdmin {
  constructor(
    private readonly deps: {
      access: StoreAccess<WebhookStore>;
      events: DomainEvents<Queryable>;
      clock: Clock;
      box: SecretSealer;
      policy: TargetPolicy;
      allowHttp: boolean;
      groupExists: (name: string) => Promise<boolean>;
    },
  ) {}

  async create(by: AdminPrincipal, scope: Scope, request: NewWebhook): Promise<{ webhook: Webhook; secret: string }> {
    const url = checkWebhookUrl(request.url, this.deps.allowHttp, this.deps.policy);
    const events = checkEvents(request.events);
    const description = (request.description ?? '').trim();
    if (description.length > 200 || /\p{Cc}/u.test(description)) throw new CaError('malformed', 'description: at most 200 characters, no control characters');
    const group = request.group;
    if (group === undefined) {
      if (scope !== 'all') throw new CaError('malformed', 'group: a group-admin creates webhooks for one of its groups; a global webhook is an admin\'s');
    } else {
      if (!GROUP_NAME.test(group)) throw new CaError('malformed', `group "${group.slice(0, 64)}" is not a group name`);
      if (!inScope(scope, group) || !(await this.deps.groupExists(group))) throw new CaError('notFound', `no group "${group}"`);
    }
    const id = `wh_${newId()}`;
    const secret = newWebhookSecret();
    const webhook: Webhook = {
      id,
      ...(group === undefined ? {} : { group }),
      url,
      events,
      description,
      createdAt: this.deps.clock.now(),
      createdBy: by.actor,
    };
    const sealed = this.deps.box.seal(Buffer.from(secret, 'utf8'), secretContext(id));
    await changeWithEvent(
      this.deps,
      'webhook.created',
      (store) => store.insert(webhook, sealed),
      () => ({ type: 'webhook.created', webhook, actor: by.actor }),
    );
    return { webhook, secret };
  }

  list(scope: Scope, filter: { group?: string; includeRemoved?: boolean }, page: { cursor?: string; limit: number }): Promise<Page<Webhook>> {
    const groups = filter.group === undefined ? (scope === 'all' ? undefined : scope) : inScope(scope, filter.group) ? [filter.group] : [];
    return this.deps.access.stores.list({ ...(groups === undefined ? {} : { groups }), includeRemoved: filter.includeRemoved === true }, page);
  }

  /** A webhook in scope; another group's (or, for a group-admin, a global one) answers like one that does not exist. */
  async get(id: string, scope: Scope): Promise<Webhook> {
    const webhook = await this.deps.access.stores.findById(id);
    if (webhook === undefined || !inScope(scope, webhook.group)) throw new CaError('notFound', `no webhook ${id.slice(0, 64)}`);
    return webhook;
  }

  async remove(by: AdminPrincipal, scope: Scope, id: string): Promise<Webhook> {
    await this.get(id, scope);
    const removed = await changeWithEvent(
      this.deps,
      'webhook.removed',
      (store) => store.remove(id, this.deps.clock.now(), by.actor),
      (done) => (done === undefined ? undefined : { type: 'webhook.removed', webhook: done, actor: by.actor }),
    );
    if (removed === undefined) throw new CaError('conflict', `webhook ${id} is already removed`);
    return removed;
  }

  async deliveries(id: string, scope: Scope, filter: { status?: DeliveryStatus }, page: { cursor?: string; limit: number }): Promise<Page<WebhookDelivery>> {
    await this.get(id, scope);
    return this.deps.access.stores.deliveries(id, filter, page);
  }
}

/** The URL a webhook may have, normalized; a CaError('malformed') naming what is wrong otherwise. */
export function checkWebhookUrl(text: string, allowHttp: boolean, policy: TargetPolicy): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_URL) throw new CaError('malformed', `url: an absolute https URL of at most ${MAX_URL} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CaError('malformed', 'url: not an absolute URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowHttp)) {
    throw new CaError('malformed', `url: must be https${allowHttp ? ' or http' : ' (http only with notifications.allowHttp, CHANCERY_NOTIFICATIONS_ALLOW_HTTP)'}`);
  }
  // Credentials in a URL end up in lists and logs; the HMAC signature is what authenticates the sender.
  if (url.username !== '' || url.password !== '') throw new CaError('malformed', 'url: must not carry a user name or password');
  if (url.hash !== '') throw new CaError('malformed', 'url: must not have a fragment');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new CaError('malformed', 'url: names no host');
  if (isIP(host) !== 0) {
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    const why = policy.denies(host, port);
    if (why !== undefined) throw new CaError('malformed', `url: the validation network policy refuses it: ${why}`);
  }
  return url.href;
}

function checkEvents(events: string[] | undefined): NotificationType[] {
  if (events === undefined) return [...NOTIFICATION_TYPES];
  if (!Array.isArray(events) || events.length === 0) throw new CaError('malformed', `events: one or more of ${NOTIFICATION_TYPES.join(', ')}`);
  const unknown = events.find((event) => typeof event !== 'string' || !isNotificationType(event));
  if (unknown !== undefined) throw new CaError('malformed', `events: "${String(unknown).slice(0, 40)}" is not one of ${NOTIFICATION_TYPES.join(', ')}`);
  return NOTIFICATION_TYPES.filter((type) => events.includes(type));
}
