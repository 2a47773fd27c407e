/**
 * The durable outbox. A notice is written in the same transaction as the change it announces, so
 * it exists exactly when the change does; a worker delivers it afterwards, at least once, across
 * restarts. Receivers drop duplicates by `event_id`.
 *
 * Row life: `pending` -> (claimed under a lease by one worker) -> `delivered`, or back to
 * `pending` with a later `next_attempt_at`, or `dead` after the last allowed attempt. A lease
 * (`locked_by`, `locked_until`) keeps every other worker off a row while it is being delivered;
 * a lease that runs out (its holder died) lets another worker take the row over. Every change a
 * worker makes after claiming is conditional on still holding the lease and the row still being
 * pending, so an operator retry or a provider's pull acknowledgement is never overwritten.
 */
import { randomUUID } from 'node:crypto';
import { PostgresAdapter, sql } from 'kysely';
import type { Db, Storage } from '../../foundation/storage/index.ts';
import type { OutboxTable } from '../../foundation/storage/tables.ts';
import { Statement } from '../../foundation/storage/statements.ts';

export type OutboxKind = OutboxTable['kind'];
export type OutboxStatus = OutboxTable['status'];

export interface NewOutboxNotice {
  kind: OutboxKind;
  eventType: string;
  /** Provider NPI for provider notices, subscription id for webhooks. */
  target: string;
  /** The exact JSON text that will be signed and posted. */
  body: string;
  eventId?: string;
  /**
   * When the worker should first look at it (ISO time); default: at once. A notice that cannot be
   * pushed yet (its provider pulls) is written already held, as the worker would leave it after
   * a look (./resolvers.ts), which spares the worker a claim and a release per notice.
   */
  dueAt?: string;
  /** Initial `last_error`: the reason a notice is written already held. */
  note?: string;
}

/** One outbox row as read back. */
export interface OutboxRow {
  seq: number;
  event_id: string;
  kind: OutboxKind;
  event_type: string;
  target: string;
  body: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: string;
  locked_by: string | null;
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

/**
 * On PostgreSQL, identity values are handed out before commit, so two concurrent transactions can
 * commit their outbox rows out of `seq` order and a pull-feed reader could step over the later
 * committer. Holding a transaction-scoped lock from the insert to the commit makes commit order
 * equal `seq` order. It is the same key as the storage layer's `audit_chain` advisory lock
 * (src/foundation/storage/database.ts): every change that enqueues a notice also appends to the audit log in
 * the same transaction and so takes that lock anyway; sharing it adds no contention and leaves
 * only one lock, so no lock-order deadlock is possible. SQLite needs nothing: its write
 * transaction already holds the single writer lock.
 */
const OUTBOX_ORDER_LOCK_KEY = 0x4e_41_01;

function isPostgres(db: Db): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/** Every new handshake enqueues a notice: plain SQL written once (../storage/statements.ts). */
const INSERT_NOTICE =
  new Statement(`INSERT INTO outbox (event_id, kind, event_type, target, body, status, attempts, next_attempt_at, locked_by, locked_until, last_error, created_at, delivered_at)
  VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, NULL, NULL, ?, ?, NULL)`);

export async function enqueue(db: Db, notice: NewOutboxNotice, at: string): Promise<string> {
  const eventId = notice.eventId ?? randomUUID();
  if (isPostgres(db)) await sql`SELECT pg_advisory_xact_lock(${OUTBOX_ORDER_LOCK_KEY})`.execute(db);
  await INSERT_NOTICE.execute(db, [
    eventId,
    notice.kind,
    notice.eventType,
    notice.target,
    notice.body,
    notice.dueAt ?? at,
    notice.note ?? null,
    at,
  ]);
  return eventId;
}

// ---------------------------------------------------------------- worker side

export interface ClaimOptions {
  /** Who holds the lease (the Neuron's instance id). */
  instanceId: string;
  now: string;
  /** When the lease runs out (ISO time). */
  leaseUntil: string;
  /** Most rows to claim. */
  limit: number;
  /** Targets this worker is already delivering to; their rows wait (one delivery per target at a time). */
  busyTargets: ReadonlySet<string>;
}

/**
 * How many candidate rows are read per row wanted: several due rows often share one target and
 * only the first of each target is claimed, so reading a few more keeps the claim useful.
 */
const CANDIDATES_PER_SLOT = 4;
/** Upper bound on candidates read in one claim, whatever the free slots. */
const MAX_CANDIDATES = 1_000;

/**
 * Claims due rows (pending, due, not leased or lease expired) under a lease, at most one per
 * target, and counts the attempt. On PostgreSQL the candidate rows are locked with
 * `FOR UPDATE SKIP LOCKED` so concurrent claimers pass over each other's rows; on SQLite the
 * write transaction (BEGIN IMMEDIATE) is exclusive, which gives the same guarantee.
 */
export async function claimDue(storage: Storage, options: ClaimOptions): Promise<OutboxRow[]> {
  if (options.limit <= 0) return [];
  const due = (db: Db) => {
    let query = db
      .selectFrom('outbox')
      .select(['seq', 'target'])
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', options.now)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', options.now)]));
    if (options.busyTargets.size > 0) query = query.where('target', 'not in', [...options.busyTargets]);
    return query;
  };
  // A plain read first: most polls find nothing due, and on SQLite a write transaction would take
  // the database's single writer lock away from handshakes on every poll for nothing.
  if (!(await due(storage.db).limit(1).executeTakeFirst())) return [];
  return storage.transaction(async (trx) => {
    const query = due(trx)
      .orderBy('next_attempt_at', 'asc')
      .orderBy('seq', 'asc')
      .limit(Math.min(options.limit * CANDIDATES_PER_SLOT, MAX_CANDIDATES));
    // SQLite accepts no FOR UPDATE; its BEGIN IMMEDIATE transaction already runs alone.
    const candidates = await (storage.dialect === 'postgres' ? query.forUpdate().skipLocked() : query).execute();

    const chosen: number[] = [];
    const targets = new Set<string>();
    for (const candidate of candidates) {
      if (chosen.length >= options.limit) break;
      if (targets.has(candidate.target)) continue;
      targets.add(candidate.target);
      chosen.push(candidate.seq);
    }
    if (chosen.length === 0) return [];
    await trx
      .updateTable('outbox')
      .set((eb) => ({ locked_by: options.instanceId, locked_until: options.leaseUntil, attempts: eb('attempts', '+', 1) }))
      .where('seq', 'in', chosen)
      .execute();
    const rows = await trx.selectFrom('outbox').selectAll().where('seq', 'in', chosen).orderBy('seq', 'asc').execute();
    return rows as OutboxRow[];
  });
}

/** Records a successful delivery; false when the lease was lost or the row changed meanwhile. */
export async function markDelivered(db: Db, seq: number, instanceId: string, at: string): Promise<boolean> {
  const result = await db
    .updateTable('outbox')
    .set({ status: 'delivered', delivered_at: at, locked_by: null, locked_until: null, last_error: null })
    .where('seq', '=', seq)
    .where('locked_by', '=', instanceId)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** A failed attempt: schedules the next one, or makes the row dead when `nextAttemptAt` is null. */
export async function markFailed(db: Db, seq: number, instanceId: string, error: string, nextAttemptAt: string | null): Promise<boolean> {
  const result = await db
    .updateTable('outbox')
    .set(
      nextAttemptAt === null
        ? { status: 'dead', locked_by: null, locked_until: null, last_error: error }
        : { next_attempt_at: nextAttemptAt, locked_by: null, locked_until: null, last_error: error },
    )
    .where('seq', '=', seq)
    .where('locked_by', '=', instanceId)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Gives a claimed row back without it counting as an attempt (the worker is stopping, or the
 * target cannot be posted to yet): the attempt counted by the claim is taken back.
 */
export async function releaseClaim(db: Db, seq: number, instanceId: string, nextAttemptAt: string, note: string | null): Promise<boolean> {
  const result = await db
    .updateTable('outbox')
    .set((eb) => ({
      next_attempt_at: nextAttemptAt,
      locked_by: null,
      locked_until: null,
      attempts: sql<number>`CASE WHEN ${eb.ref('attempts')} > 0 THEN ${eb.ref('attempts')} - 1 ELSE 0 END`,
      ...(note === null ? {} : { last_error: note }),
    }))
    .where('seq', '=', seq)
    .where('locked_by', '=', instanceId)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Makes every pending row for a target due now (its notification URL was set, it was approved). */
export async function wakeTarget(db: Db, kind: OutboxKind, target: string, at: string): Promise<number> {
  const result = await db
    .updateTable('outbox')
    .set({ next_attempt_at: at })
    .where('kind', '=', kind)
    .where('target', '=', target)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '>', at)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

// ---------------------------------------------------------------- operators

export async function getOutboxRow(db: Db, eventId: string): Promise<OutboxRow | null> {
  const row = await db.selectFrom('outbox').selectAll().where('event_id', '=', eventId).executeTakeFirst();
  return (row as OutboxRow | undefined) ?? null;
}

export interface OutboxListFilter {
  status?: OutboxStatus;
  kind?: OutboxKind;
  target?: string;
  /** Only rows with a larger `seq`. */
  afterSeq?: number;
  limit: number;
}

/** Rows in `seq` order. */
export async function listOutbox(db: Db, filter: OutboxListFilter): Promise<OutboxRow[]> {
  let query = db.selectFrom('outbox').selectAll();
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
  if (filter.target !== undefined) query = query.where('target', '=', filter.target);
  if (filter.afterSeq !== undefined) query = query.where('seq', '>', filter.afterSeq);
  return (await query.orderBy('seq', 'asc').limit(filter.limit).execute()) as OutboxRow[];
}

/**
 * Puts a notice back in the queue, due now with a fresh attempt budget: a dead letter the
 * operator wants retried, or a delivered one to be delivered again. Returns the updated row, or
 * null when no such event exists.
 */
export async function requeue(db: Db, eventId: string, at: string): Promise<OutboxRow | null> {
  const result = await db
    .updateTable('outbox')
    .set({ status: 'pending', attempts: 0, next_attempt_at: at, locked_by: null, locked_until: null, delivered_at: null })
    .where('event_id', '=', eventId)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) return null;
  return getOutboxRow(db, eventId);
}

// ---------------------------------------------------------------- provider pull feed

/** A provider's relationship notices after `afterSeq`, in `seq` order. */
export async function providerFeed(db: Db, npi: string, afterSeq: number, limit: number): Promise<OutboxRow[]> {
  return listOutbox(db, { kind: 'provider.relationship', target: npi, afterSeq, limit });
}

/**
 * The provider has read every notice up to `seq` (it asked for what follows them): the pending
 * and dead ones among them count as delivered, since the provider has them now. Rows currently leased by a worker are included; the
 * worker's own conditional update then finds the row no longer pending and leaves it.
 */
export async function acknowledgeThrough(db: Db, npi: string, seq: number, at: string): Promise<number> {
  const result = await db
    .updateTable('outbox')
    .set({ status: 'delivered', delivered_at: at, locked_by: null, locked_until: null, last_error: null })
    .where('kind', '=', 'provider.relationship')
    .where('target', '=', npi)
    .where('status', 'in', ['pending', 'dead'])
    .where('seq', '<=', seq)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
