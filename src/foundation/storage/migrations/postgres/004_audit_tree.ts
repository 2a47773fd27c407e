import { sql, type Kysely } from 'kysely';

/**
 * The audit log's Merkle tree (RFC 9162 section 2.1, docs/storage.md): every aligned complete
 * subtree's hash, written once as it completes, so an inclusion or consistency proof is O(log n)
 * lookups; and the signed tree heads, one per commit that appended entries. Hashes are lowercase hex.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE audit_tree_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
  )`.execute(db);
  await sql`CREATE TABLE audit_tree_heads (
    tree_size BIGINT PRIMARY KEY,
    root_hash TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE audit_tree_heads`.execute(db);
  await sql`DROP TABLE audit_tree_nodes`.execute(db);
}
