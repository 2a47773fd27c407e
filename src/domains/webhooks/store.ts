/**
 * Webhook subscriptions. The signing secret is stored as is: the outbox worker needs it to sign
 * each delivery (HMAC-SHA256, src/domains/outbox/signing.ts). A deleted subscription is kept inactive, so
 * deliveries already queued for it resolve to "removed" (dead letter) instead of a dangling id.
 */
import type { Db } from '../../foundation/storage/index.ts';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';
import type { WebhookSubscriptionsTable } from '../../foundation/storage/tables.ts';
import { Statement } from '../../foundation/storage/statements.ts';
import type { WebhookEventType } from './event-types.ts';

export interface WebhookSubscription {
  id: string;
  url: string;
  events: WebhookEventType[];
  label: string;
  createdBy: string;
  createdAt: string;
}

function toSubscription(row: WebhookSubscriptionsTable): WebhookSubscription {
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as WebhookEventType[],
    label: row.label,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

/** Read by every new handshake's fan-out: plain SQL written once (storage/statements.ts). */
const ACTIVE_SUBSCRIPTIONS = new Statement('SELECT id, events FROM webhook_subscriptions WHERE active = 1');

/** The active subscriptions and the event types each takes, read in the caller's transaction. */
export async function activeSubscriptionEvents(db: Db): Promise<Array<{ id: string; events: string[] }>> {
  const { rows } = await ACTIVE_SUBSCRIPTIONS.execute<{ id: string; events: string }>(db, []);
  return rows.map((row) => ({ id: row.id, events: JSON.parse(row.events) as string[] }));
}

export async function insertSubscription(db: Db, subscription: WebhookSubscription, secret: string): Promise<void> {
  await db
    .insertInto('webhook_subscriptions')
    .values({
      id: subscription.id,
      url: subscription.url,
      events: JSON.stringify(subscription.events),
      secret,
      label: subscription.label,
      created_by: subscription.createdBy,
      created_at: subscription.createdAt,
      active: 1,
    })
    .execute();
}

/** The active subscription with this id, or null. */
export async function getSubscription(db: Db, id: string): Promise<WebhookSubscription | null> {
  const row = await db.selectFrom('webhook_subscriptions').selectAll().where('id', '=', id).where('active', '=', 1).executeTakeFirst();
  return row ? toSubscription(row) : null;
}

/**
 * Where a delivery for this subscription goes and the secret that signs it; null when the
 * subscription was removed or disabled (the outbox's webhook resolver, given it by the
 * composition root, so the outbox reads no table of this domain).
 */
export async function webhookDeliveryTarget(db: Db, id: string): Promise<{ url: string; secret: string } | null> {
  const row = await db.selectFrom('webhook_subscriptions').select(['url', 'secret', 'active']).where('id', '=', id).executeTakeFirst();
  return row === undefined || row.active !== 1 ? null : { url: row.url, secret: row.secret };
}

/** Returns false when there is no active subscription with this id. */
export async function deactivateSubscription(db: Db, id: string): Promise<boolean> {
  const result = await db
    .updateTable('webhook_subscriptions')
    .set({ active: 0 })
    .where('id', '=', id)
    .where('active', '=', 1)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Active subscriptions in creation order. */
export async function listSubscriptions(
  db: Db,
  options: { after?: string; limit: number },
): Promise<{ items: WebhookSubscription[]; next: string | null }> {
  let query = db.selectFrom('webhook_subscriptions').selectAll().where('active', '=', 1);
  if (options.after !== undefined) {
    const [at, id] = decodeCursor(options.after, ['string', 'string']) as [string, string];
    query = query.where((eb) => eb.or([eb('created_at', '>', at), eb.and([eb('created_at', '=', at), eb('id', '>', id)])]));
  }
  const rows = await query
    .orderBy('created_at', 'asc')
    .orderBy('id', 'asc')
    .limit(options.limit + 1)
    .execute();
  return pageOf(rows, options.limit, toSubscription, (last) => [last.createdAt, last.id]);
}
