/**
 * Operator actions on the outbox (REST and CLI alike): list notices, and put a dead letter (or a
 * delivered notice) back in the queue. Each requeue is audited in its own transaction.
 */
import type { AuditLog } from '../audit/index.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import { listOutbox, requeue, type OutboxKind, type OutboxRow, type OutboxStatus } from './store.ts';

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
