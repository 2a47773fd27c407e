import { sql, type Kysely } from 'kysely';

/**
 * (PostgreSQL, the same as SQLite.) At most one active organization key, guaranteed by the database: instances starting at once on
 * an empty database could otherwise each create one. A database that already has several active
 * keys keeps the newest active (the one every instance already loads); the others stay stored,
 * inactive, so checkpoints they signed still verify.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`UPDATE organization_keys SET active = 0 WHERE active = 1 AND id <> (
    SELECT id FROM organization_keys WHERE active = 1 ORDER BY created_at DESC, id DESC LIMIT 1
  )`.execute(db);
  await sql`CREATE UNIQUE INDEX organization_keys_one_active ON organization_keys (active) WHERE active = 1`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX organization_keys_one_active`.execute(db);
}
