import { sql, type Kysely } from 'kysely';

/**
 * GET /v1/relationships/{id}/attestation answers the relationship's audit receipt: it finds the
 * `handshake.completed` entry that established the relationship by the relationship id in the
 * entry's details. This partial expression index serves that lookup with one probe instead of a
 * walk over every handshake in the log. No column changes; the SQLite step indexes the same
 * expression (`details` is JSON text in both dialects).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX audit_log_by_relationship ON audit_log (((details::jsonb) ->> 'relationship_id'), seq) WHERE event_type = 'handshake.completed'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX audit_log_by_relationship`.execute(db);
}
