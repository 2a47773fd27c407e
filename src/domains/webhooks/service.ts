/**
 * Webhook subscriptions for third-party apps: which events, where to, and the secret that signs
 * each delivery. The secret is returned once, at creation. Delivery itself (retries, backoff,
 * signing, dead letters) is the outbox worker's (src/domains/outbox/worker.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { NeuronError } from '../../foundation/errors/index.ts';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import type { AuditLog } from '../audit/index.ts';
import type { WebhookEventType } from './event-types.ts';
import type { OutboundPolicy } from '../../foundation/outbound/index.ts';
import { deactivateSubscription, getSubscription, insertSubscription, listSubscriptions, type WebhookSubscription } from './store.ts';

/** 32 random bytes: the HMAC-SHA256 key size. */
const SECRET_BYTES = 32;
export const WEBHOOK_SECRET_PREFIX = 'whsec_';

export interface WebhookActor {
  actor: string;
  keyId: string | undefined;
}

export interface NewSubscription {
  url: string;
  events: WebhookEventType[];
  label: string;
}

/** Problems with a receiver URL that a schema cannot express; empty when it is fine. */
export function webhookUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http(s) URL';
  // Credentials in a URL end up in listings and logs; authenticate receivers by the signature.
  if (url.username !== '' || url.password !== '')
    return 'must not contain a user name or password; verify the Neuron-Signature header instead';
  if (url.hash !== '') return 'must not contain a #fragment';
  return null;
}

export interface WebhookServiceOptions {
  storage: Storage;
  audit: AuditLog;
  /** The policy receiver URLs must meet (checked again at every delivery). */
  outbound: OutboundPolicy;
  now?: () => number;
}

export class WebhookService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;
  readonly #outbound: OutboundPolicy;
  readonly #now: () => number;

  constructor(options: WebhookServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
    this.#outbound = options.outbound;
    this.#now = options.now ?? Date.now;
  }

  async create(input: NewSubscription, by: WebhookActor): Promise<{ subscription: WebhookSubscription; secret: string }> {
    const problem = webhookUrlProblem(input.url);
    if (problem !== null)
      throw new NeuronError('VALIDATION_FAILED', {
        message: `invalid request: body.url ${problem}`,
        errors: [{ path: 'body.url', message: problem }],
      });
    const refusal = this.#outbound.urlProblem(input.url);
    if (refusal !== null) {
      const message = `is refused by the outbound policy: it ${refusal}`;
      throw new NeuronError('OUTBOUND_TARGET_REFUSED', { message: `body.url ${message}`, errors: [{ path: 'body.url', message }] });
    }
    const now = this.#now();
    const subscription: WebhookSubscription = {
      id: randomUUID(),
      url: input.url,
      events: [...new Set(input.events)],
      label: input.label,
      createdBy: by.actor,
      createdAt: isoNow(now),
    };
    const secret = `${WEBHOOK_SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64url')}`;
    await this.#storage.transaction(async (trx) => {
      await insertSubscription(trx, subscription, secret);
      await this.#audit.append(
        trx,
        {
          type: 'webhook.created',
          actor: by.actor,
          details: {
            webhook_id: subscription.id,
            url: subscription.url,
            events: subscription.events,
            label: subscription.label,
            key_id: by.keyId,
          },
        },
        now,
      );
    });
    return { subscription, secret };
  }

  async get(id: string): Promise<WebhookSubscription> {
    const subscription = await getSubscription(this.#storage.db, id);
    if (subscription === null) throw new NeuronError('NOT_FOUND', { message: 'no webhook subscription with this id' });
    return subscription;
  }

  list(options: { after?: string; limit: number }): Promise<{ items: WebhookSubscription[]; next: string | null }> {
    return listSubscriptions(this.#storage.db, options);
  }

  /** Stops deliveries at once; events already queued for it become dead letters. */
  async delete(id: string, by: WebhookActor): Promise<void> {
    const now = this.#now();
    await this.#storage.transaction(async (trx) => {
      if (!(await deactivateSubscription(trx, id))) throw new NeuronError('NOT_FOUND', { message: 'no webhook subscription with this id' });
      await this.#audit.append(trx, { type: 'webhook.deleted', actor: by.actor, details: { webhook_id: id, key_id: by.keyId } }, now);
    });
  }
}
