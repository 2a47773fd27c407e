/**
 * Domain events for third-party webhooks. Publishing happens inside the transaction of the change
 * and fans out to one outbox row per active subscription, so each subscriber gets its own
 * retries and its own signature.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../foundation/storage/index.ts';
import { Statement } from '../../foundation/storage/statements.ts';
import { enqueue } from './store.ts';

export const WEBHOOK_EVENT_TYPES = ['relationship.established', 'relationship.terminated', 'patient.blocked'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Read by every new handshake: plain SQL written once (../storage/statements.ts). */
const ACTIVE_SUBSCRIPTIONS = new Statement('SELECT id, events FROM webhook_subscriptions WHERE active = 1');

/** Enqueues the event for every active subscription to its type; returns how many were queued. */
export async function publishWebhookEvent(db: Db, type: WebhookEventType, data: Record<string, unknown>, at: string): Promise<number> {
  const subscriptions = (await ACTIVE_SUBSCRIPTIONS.execute<{ id: string; events: string }>(db, [])).rows;
  let queued = 0;
  for (const subscription of subscriptions) {
    const events = JSON.parse(subscription.events) as string[];
    if (!events.includes(type)) continue;
    const eventId = randomUUID();
    const body = JSON.stringify({ event_id: eventId, type, occurred_at: at, data });
    await enqueue(db, { kind: 'webhook', eventType: type, target: subscription.id, body, eventId }, at);
    queued += 1;
  }
  return queued;
}
