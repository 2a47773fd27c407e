/**
 * Counts over the audit log for other domains (the status domain's handshakes per day), so they
 * ask this domain rather than read its table. Through the (event_type, occurred_at) index of
 * migration 006: one range per event type, however long the log.
 */
import { sql } from 'kysely';
import type { Db } from '../../foundation/storage/index.ts';

export interface AuditDayCount {
  /** The UTC day, YYYY-MM-DD. */
  date: string;
  eventType: string;
  count: number;
}

/** How many entries of each of `eventTypes` occurred on each UTC day from `since` (ISO-8601) on; days without any are absent. */
export async function auditEventsPerDay(db: Db, eventTypes: readonly string[], since: string): Promise<AuditDayCount[]> {
  if (eventTypes.length === 0) return [];
  const rows = await db
    .selectFrom('audit_log')
    .select([sql<string>`substr(occurred_at, 1, 10)`.as('date'), 'event_type', (eb) => eb.fn.countAll<number | string>().as('count')])
    .where('event_type', 'in', [...eventTypes])
    .where('occurred_at', '>=', since)
    .groupBy([sql`substr(occurred_at, 1, 10)`, 'event_type'])
    .execute();
  return rows.map((row) => ({ date: row.date, eventType: row.event_type, count: Number(row.count) }));
}
