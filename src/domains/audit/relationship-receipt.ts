/**
 * A relationship's audit receipt produced after the fact (docs/protocol.md "Audit receipts"): the
 * `handshake.completed` entry that established the relationship, the latest signed tree head and
 * the entry's inclusion proof in that head's tree. The handshake hands the patient the receipt of
 * the head sealed in its own commit; this one names a later head, which proves the same thing (the
 * organization cannot delete or alter the entry without the proof failing) and is consistent with
 * the first by the log's append-only tree.
 */
import { sql } from 'kysely';
import type { Receipt } from 'neuron-careagent-client/protocol';
import type { Storage } from '../../foundation/storage/index.ts';
import { entryCanonical, type AuditEntry } from './chain.ts';
import { latestTreeHead, storedInclusionProof } from './tree.ts';

/**
 * Why a relationship has no receipt: no `handshake.completed` entry names it (it was recorded
 * before the audit log existed, or written by hand), or the latest signed tree head does not cover
 * its entry yet (a log kept before tree heads existed, until the next audited change seals it).
 */
export type ReceiptAbsence = 'NO_AUDIT_ENTRY' | 'NOT_YET_SEALED';

export type RelationshipReceipt = { receipt: Receipt; absence: null } | { receipt: null; absence: ReceiptAbsence };

/**
 * The first (establishing) `handshake.completed` entry naming the relationship: one probe of the
 * partial expression index of migration 007, whose expression and predicate the query repeats
 * word for word so each dialect's planner matches them.
 */
async function establishingEntry(storage: Storage, relationshipId: string): Promise<AuditEntry | undefined> {
  const query =
    storage.dialect === 'postgres'
      ? sql<AuditEntry>`SELECT seq, occurred_at, event_type, actor, details, prev_hash, hash FROM audit_log
          WHERE event_type = 'handshake.completed' AND ((details::jsonb) ->> 'relationship_id') = ${relationshipId}
          ORDER BY seq LIMIT 1`
      : sql<AuditEntry>`SELECT seq, occurred_at, event_type, actor, details, prev_hash, hash FROM audit_log
          WHERE event_type = 'handshake.completed' AND json_extract(details, '$.relationship_id') = ${relationshipId}
          ORDER BY seq LIMIT 1`;
  return (await query.execute(storage.db)).rows[0];
}

export async function relationshipReceipt(storage: Storage, relationshipId: string): Promise<RelationshipReceipt> {
  const entry = await establishingEntry(storage, relationshipId);
  if (entry === undefined) return { receipt: null, absence: 'NO_AUDIT_ENTRY' };
  const head = await latestTreeHead(storage.db);
  if (head === null || head.tree_size < entry.seq) return { receipt: null, absence: 'NOT_YET_SEALED' };
  // Stored nodes never change once written, so a head read before them still matches them.
  const proof = await storedInclusionProof(storage.db, entry.seq - 1, head.tree_size);
  return {
    receipt: {
      entry: entryCanonical(entry),
      leaf_index: entry.seq - 1,
      inclusion_proof: proof.map((hash) => hash.toString('hex')),
      tree_head: head,
    },
    absence: null,
  };
}
