/**
 * The outbox's public face for other domains and the routes: operator actions (list notices, put
 * a dead letter or a delivered notice back in the queue, each requeue audited in its own
 * transaction), a provider's pull feed, waking a target's held notices, and the backlog counts
 * `/v1/status` shows. Nothing outside this domain touches the `outbox` table.
 */
import { sql } from 'kysely';
import type { AuditLog } from '../audit/index.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';
import { isoNow, type Db, type Storage } from '../../foundation/storage/index.ts';
import {
  acknowledgeThrough,
  listOutbox,
  providerFeed,
  requeue,
  wakeTarget,
  type OutboxKind,
  type OutboxRow,
  type OutboxStatus,
} from './store.ts';

/** An outbox row as shown to operators: never the body (it is the receiver's business). */
export interface OutboxView {
  event_id: string;
  kind: OutboxKind;
  event_type: string;
  target: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

export function toOutboxView(row: OutboxRow): OutboxView {
  return {
    event_id: row.event_id,
    kind: row.kind,
    event_type: row.event_type,
    target: row.target,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: row.next_attempt_at,
    last_error: row.last_error,
    created_at: row.created_at,
    delivered_at: row.delivered_at,
  };
}

export async function listNotices(
  storage: Storage,
  filter: { status?: OutboxStatus; kind?: OutboxKind; after?: string; limit: number },
): Promise<{ items: OutboxRow[]; next: string | null }> {
  const afterSeq = filter.after === undefined ? undefined : Number(decodeCursor(filter.after, ['number'])[0]);
  const rows = await listOutbox(storage.db, { status: filter.status, kind: filter.kind, afterSeq, limit: filter.limit + 1 });
  return pageOf(
    rows,
    filter.limit,
    (row) => row,
    (last) => [last.seq],
  );
}

/** Puts a notice back in the queue with a fresh attempt budget, due now. */
export async function requeueNotice(storage: Storage, audit: AuditLog, eventId: string, actor: string): Promise<OutboxRow> {
  return storage.transaction(async (trx) => {
    await storage.lock(trx, 'audit_chain');
    const before = await trx.selectFrom('outbox').select(['status', 'kind', 'target']).where('event_id', '=', eventId).executeTakeFirst();
    if (!before) throw new NeuronError('NOT_FOUND', { message: 'no outbox notice with this event id' });
    if (before.status === 'pending') throw new NeuronError('CONFLICT', { message: 'this notice is still pending delivery' });
    const row = await requeue(trx, eventId, isoNow());
    if (!row) throw new NeuronError('NOT_FOUND', { message: 'no outbox notice with this event id' });
    await audit.append(trx, {
      type: 'outbox.requeued',
      actor,
      details: { event_id: eventId, kind: before.kind, target: before.target, previous_status: before.status },
    });
    return row;
  });
}

/** Notices and webhook deliveries by state, across all instances (`/v1/status`). */
export interface OutboxBacklog {
  pending: number;
  delivered: number;
  dead: number;
  oldest_pending_at: string | null;
}

export interface OutboxServiceOptions {
  storage: Storage;
  audit: AuditLog;
}

/** What other domains and the routes ask of the outbox, so none of them reads its table. */
export class OutboxService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;

  constructor(options: OutboxServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
  }

  list(filter: {
    status?: OutboxStatus;
    kind?: OutboxKind;
    after?: string;
    limit: number;
  }): Promise<{ items: OutboxRow[]; next: string | null }> {
    return listNotices(this.#storage, filter);
  }

  /** Throws NOT_FOUND or CONFLICT (still pending). */
  requeue(eventId: string, actor: string): Promise<OutboxRow> {
    return requeueNotice(this.#storage, this.#audit, eventId, actor);
  }

  /**
   * Makes every pending notice for a provider due now, inside the caller's transaction (its
   * notification URL was set, or it was approved); returns how many.
   */
  wakeProviderNotices(trx: Db, npi: string, at: string): Promise<number> {
    return wakeTarget(trx, 'provider.relationship', npi, at);
  }

  /**
   * A provider's pull feed: with `acknowledge`, every notice up to `afterSeq` first counts as
   * delivered (the provider asked for what follows them); then up to `limit` notices after it.
   */
  async providerFeed(npi: string, afterSeq: number, limit: number, acknowledge: boolean): Promise<OutboxRow[]> {
    const db = this.#storage.db;
    if (acknowledge && afterSeq > 0) await acknowledgeThrough(db, npi, afterSeq, isoNow());
    return providerFeed(db, npi, afterSeq, limit);
  }

  /**
   * Rows waiting for delivery and rows given up on, from one indexed count (outbox_due starts with
   * status): what the Prometheus gauges show at each scrape (src/foundation/observability/service-metrics.ts).
   */
  async deliveryCounts(): Promise<{ pending: number; dead: number }> {
    const rows = await this.#storage.db
      .selectFrom('outbox')
      .select(['status', sql<number>`count(*)`.as('n')])
      .where('status', 'in', ['pending', 'dead'])
      .groupBy('status')
      .execute();
    const byStatus = Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
    return { pending: byStatus['pending'] ?? 0, dead: byStatus['dead'] ?? 0 };
  }

  async backlog(): Promise<OutboxBacklog> {
    const db = this.#storage.db;
    const rows = await db
      .selectFrom('outbox')
      .select(['status', sql<number>`count(*)`.as('n')])
      .groupBy('status')
      .execute();
    const counts = Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
    const oldest = await db
      .selectFrom('outbox')
      .select('created_at')
      .where('status', '=', 'pending')
      .orderBy('seq', 'asc')
      .limit(1)
      .executeTakeFirst();
    return {
      pending: counts['pending'] ?? 0,
      delivered: counts['delivered'] ?? 0,
      dead: counts['dead'] ?? 0,
      oldest_pending_at: oldest?.created_at ?? null,
    };
  }
}
