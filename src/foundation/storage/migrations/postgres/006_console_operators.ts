import { sql, type Kysely } from 'kysely';

/**
 * The operators' console (src/domains/operators/): the people who sign in, and their sessions. Only a
 * scrypt hash of each password and a SHA-256 of each session token are stored, so a copy of the
 * database signs nobody in. A session row goes with its operator (ON DELETE CASCADE). The audit
 * index serves GET /v1/stats/handshakes: a range of days of one event type without walking the
 * whole log. Column for column the same in both dialects.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE operators (
      name TEXT PRIMARY KEY,
      role TEXT NOT NULL CHECK (role IN ('front-desk', 'admin')),
      password_hash TEXT NOT NULL,
      failed_signins INTEGER NOT NULL DEFAULT 0,
      locked_until TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
    sql`CREATE TABLE operator_sessions (
      token_digest TEXT PRIMARY KEY,
      operator_name TEXT NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
      created_at TEXT NOT NULL,
      last_seen_at TEXT NOT NULL,
      expires_at TEXT NOT NULL
    )`,
    sql`CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_name)`,
    sql`CREATE INDEX audit_log_by_type_time ON audit_log (event_type, occurred_at)`,
  ];
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX audit_log_by_type_time`.execute(db);
  await sql`DROP TABLE operator_sessions`.execute(db);
  await sql`DROP TABLE operators`.execute(db);
}
