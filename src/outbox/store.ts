/**
 * The durable outbox. A notice is written in the same transaction as the change it announces, so
 * it exists exactly when the change does; a worker delivers it afterwards, at least once, across
 * restarts. Receivers drop duplicates by `event_id`.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../storage/index.ts';
import type { OutboxTable } from '../storage/tables.ts';

export type OutboxKind = OutboxTable['kind'];

export interface NewOutboxNotice {
  kind: OutboxKind;
  eventType: string;
  /** Provider NPI for provider notices, subscription id for webhooks. */
  target: string;
  /** The exact JSON text that will be signed and posted. */
  body: string;
  eventId?: string;
}

export async function enqueue(db: Db, notice: NewOutboxNotice, at: string): Promise<string> {
  const eventId = notice.eventId ?? randomUUID();
  await db.insertInto('outbox').values({
    event_id: eventId,
    kind: notice.kind,
    event_type: notice.eventType,
    target: notice.target,
    body: notice.body,
    status: 'pending',
    attempts: 0,
    next_attempt_at: at,
    locked_by: null,
    locked_until: null,
    last_error: null,
    created_at: at,
    delivered_at: null,
  }).execute();
  return eventId;
}
