/**
 * Organization-side blocks of patient agents. A blocked agent's handshakes end in BLOCKED, and so
 * do handshakes under any agent id with a public key the blocked agent had presented; the
 * check reads the database on every handshake, so a block made through any instance or the CLI
 * takes effect at once everywhere.
 */
import type { Db } from '../../foundation/storage/index.ts';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';
import { Statement } from '../../foundation/storage/statements.ts';

export interface Block {
  patientAgentId: string;
  reason: string | null;
  blockedBy: string;
  createdAt: string;
}

export async function isBlocked(db: Db, patientAgentId: string): Promise<boolean> {
  const row = await db.selectFrom('blocks').select('patient_agent_id').where('patient_agent_id', '=', patientAgentId).executeTakeFirst();
  return row !== undefined;
}

/**
 * The handshake's block check: this agent id is blocked, or an agent that presented this key was
 * (blocked_keys: the leading column of its primary key). Plain SQL written once
 * (storage/statements.ts), read fresh on every handshake, before the challenge and at its commit.
 */
const AGENT_OR_KEY_BLOCKED = new Statement(`SELECT
    (EXISTS (SELECT 1 FROM blocks WHERE patient_agent_id = ?)
      OR EXISTS (SELECT 1 FROM blocked_keys WHERE patient_public_key = ?)) AS blocked`);

export async function isAgentOrKeyBlocked(db: Db, patientAgentId: string, patientPublicKey: string): Promise<boolean> {
  const { rows } = await AGENT_OR_KEY_BLOCKED.execute<{ blocked: number | boolean }>(db, [patientAgentId, patientPublicKey]);
  return Boolean(rows[0]?.blocked);
}

/** Returns false when the agent was already blocked (nothing changed). */
export async function insertBlock(db: Db, block: Block): Promise<boolean> {
  const result = await db
    .insertInto('blocks')
    .values({ patient_agent_id: block.patientAgentId, reason: block.reason, blocked_by: block.blockedBy, created_at: block.createdAt })
    .onConflict((conflict) => conflict.column('patient_agent_id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Returns false when the agent was not blocked. */
export async function deleteBlock(db: Db, patientAgentId: string): Promise<boolean> {
  const result = await db.deleteFrom('blocks').where('patient_agent_id', '=', patientAgentId).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

export async function listBlocks(db: Db, options: { after?: string; limit: number }): Promise<{ items: Block[]; next: string | null }> {
  let query = db.selectFrom('blocks').selectAll();
  if (options.after !== undefined) {
    const [id] = decodeCursor(options.after, ['string']) as [string];
    query = query.where('patient_agent_id', '>', id);
  }
  const rows = await query
    .orderBy('patient_agent_id', 'asc')
    .limit(options.limit + 1)
    .execute();
  return pageOf(
    rows,
    options.limit,
    (row) => ({ patientAgentId: row.patient_agent_id, reason: row.reason, blockedBy: row.blocked_by, createdAt: row.created_at }),
    (last) => [last.patientAgentId],
  );
}

/**
 * Stores the public keys this agent presented here (gathered by the service from the
 * relationships and directory domains) as blocked with it, so the same key is refused under any
 * other agent id. Returns them sorted, without repeats.
 */
export async function blockKeysOf(db: Db, patientAgentId: string, presentedKeys: readonly string[], at: string): Promise<string[]> {
  const keys = [...new Set(presentedKeys)].sort();
  if (keys.length > 0) {
    await db
      .insertInto('blocked_keys')
      .values(keys.map((key) => ({ patient_public_key: key, patient_agent_id: patientAgentId, created_at: at })))
      .onConflict((conflict) => conflict.columns(['patient_public_key', 'patient_agent_id']).doNothing())
      .execute();
  }
  return keys;
}

/** Lifts the block on the keys stored with this agent's block. */
export async function unblockKeysOf(db: Db, patientAgentId: string): Promise<void> {
  await db.deleteFrom('blocked_keys').where('patient_agent_id', '=', patientAgentId).execute();
}
