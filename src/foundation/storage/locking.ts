/**
 * Row claiming that is safe across instances sharing one database.
 *
 * A worker that picks rows to process (the outbox delivery worker, for example) must never have
 * two instances pick the same row. On PostgreSQL the claim's inner SELECT takes row locks with
 * FOR UPDATE SKIP LOCKED: rows another instance is claiming at that moment are skipped instead of
 * waited for or claimed twice. SQLite has no row locks and does not accept the clause; there a
 * single statement (or a BEGIN IMMEDIATE transaction) already runs alone.
 *
 * Typical use, one statement on both dialects (see docs/storage.md, "Claiming work"):
 *
 *   const due = db.selectFrom('outbox').select('seq')
 *     .where('status', '=', 'pending').where('next_attempt_at', '<=', now)
 *     .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
 *     .orderBy('seq').limit(batchSize)
 *     .$call((qb) => forUpdateSkipLocked(storage.dialect, qb));
 *   const claimed = await db.updateTable('outbox')
 *     .set({ locked_by: instanceId, locked_until: until })
 *     .where('seq', 'in', due)
 *     .returningAll().execute();
 */
import type { SelectQueryBuilder } from 'kysely';
import type { Dialect } from './types.ts';

/** Adds FOR UPDATE SKIP LOCKED on PostgreSQL; returns the query unchanged on SQLite. */
export function forUpdateSkipLocked<DB, TB extends keyof DB, O>(
  dialect: Dialect,
  query: SelectQueryBuilder<DB, TB, O>,
): SelectQueryBuilder<DB, TB, O> {
  return dialect === 'postgres' ? query.forUpdate().skipLocked() : query;
}
