/**
 * Domain events for third-party webhooks. Publishing happens inside the transaction of the change
 * and fans out to one outbox row per active subscription, so each subscriber gets its own
 * retries and its own signature. The subscriptions are this domain's; the rows go in through the
 * outbox's `enqueue`.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../foundation/storage/index.ts';
import { enqueue } from '../outbox/index.ts';
import type { WebhookEventType } from './event-types.ts';
import { activeSubscriptionEvents } from './store.ts';

/** Enqueues the event for every active subscription to its type; returns how many were queued. */
export async function publishWebhookEvent(db: Db, type: WebhookEventType, data: Record<string, unknown>, at: string): Promise<number> {
  let queued = 0;
  for (const subscription of await activeSubscriptionEvents(db)) {
    if (!subscription.events.includes(type)) continue;
    const eventId = randomUUID();
    const body = JSON.stringify({ event_id: eventId, type, occurred_at: at, data });
    await enqueue(db, { kind: 'webhook', eventType: type, target: subscription.id, body, eventId }, at);
    queued += 1;
  }
  return queued;
}
