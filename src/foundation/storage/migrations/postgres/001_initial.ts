import { sql, type Kysely } from 'kysely';

/**
 * The first schema for PostgreSQL, column for column the same as the SQLite one so that one store
 * implementation serves both. Times are ISO-8601 text; see ../../tables.ts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE organization_keys (
      id TEXT PRIMARY KEY,
      public_key TEXT NOT NULL,
      private_key_pkcs8 TEXT NOT NULL,
      created_at TEXT NOT NULL,
      active INTEGER NOT NULL DEFAULT 1
    )`,
    sql`CREATE TABLE providers (
      npi TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      provider_types TEXT NOT NULL,
      specialty TEXT,
      credentials TEXT NOT NULL DEFAULT '[]',
      status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
      provider_endpoint TEXT,
      provider_public_key TEXT,
      notification_url TEXT,
      registration_id TEXT UNIQUE,
      credential_id TEXT UNIQUE,
      credential_digest TEXT,
      last_seen_at TEXT,
      registry_state TEXT NOT NULL DEFAULT 'unregistered',
      registry_error TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
    sql`CREATE TABLE relationships (
      id TEXT PRIMARY KEY,
      patient_agent_id TEXT NOT NULL,
      patient_public_key TEXT NOT NULL,
      patient_endpoint TEXT NOT NULL,
      provider_npi TEXT NOT NULL,
      consented_actions TEXT NOT NULL,
      consent_token_payload TEXT NOT NULL,
      consent_token_signature TEXT NOT NULL,
      token_dialect TEXT NOT NULL,
      consent_expires_at TEXT NOT NULL,
      connection_id TEXT,
      status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'terminated')),
      status_reason TEXT,
      established_at TEXT NOT NULL,
      last_handshake_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
    // The database, not the code, guarantees one active relationship per patient and provider, so
    // racing handshakes cannot both create one.
    sql`CREATE UNIQUE INDEX relationships_one_active ON relationships (patient_agent_id, provider_npi) WHERE status = 'active'`,
    sql`CREATE INDEX relationships_by_provider ON relationships (provider_npi, established_at, id)`,
    sql`CREATE INDEX relationships_by_time ON relationships (established_at, id)`,
    sql`CREATE TABLE patients (
      patient_agent_id TEXT PRIMARY KEY,
      patient_public_key TEXT NOT NULL,
      patient_endpoint TEXT NOT NULL,
      profile TEXT,
      first_seen_at TEXT NOT NULL,
      last_seen_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
    sql`CREATE TABLE blocks (
      patient_agent_id TEXT PRIMARY KEY,
      reason TEXT,
      blocked_by TEXT NOT NULL,
      created_at TEXT NOT NULL
    )`,
    sql`CREATE TABLE api_keys (
      id TEXT PRIMARY KEY,
      label TEXT NOT NULL,
      scopes TEXT NOT NULL,
      digest TEXT NOT NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT,
      revoked_at TEXT,
      last_used_at TEXT
    )`,
    sql`CREATE TABLE outbox (
      seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      event_id TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL,
      event_type TEXT NOT NULL,
      target TEXT NOT NULL,
      body TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at TEXT NOT NULL,
      locked_by TEXT,
      locked_until TEXT,
      last_error TEXT,
      created_at TEXT NOT NULL,
      delivered_at TEXT
    )`,
    sql`CREATE INDEX outbox_due ON outbox (status, next_attempt_at)`,
    sql`CREATE INDEX outbox_by_target ON outbox (kind, target, seq)`,
    sql`CREATE TABLE webhook_subscriptions (
      id TEXT PRIMARY KEY,
      url TEXT NOT NULL,
      events TEXT NOT NULL,
      secret TEXT NOT NULL,
      label TEXT NOT NULL,
      created_by TEXT NOT NULL,
      created_at TEXT NOT NULL,
      active INTEGER NOT NULL DEFAULT 1
    )`,
    sql`CREATE TABLE audit_log (
      seq BIGINT PRIMARY KEY,
      occurred_at TEXT NOT NULL,
      event_type TEXT NOT NULL,
      actor TEXT NOT NULL,
      details TEXT NOT NULL,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    )`,
    sql`CREATE INDEX audit_log_by_type ON audit_log (event_type, seq)`,
    sql`CREATE TABLE audit_checkpoints (
      seq BIGINT PRIMARY KEY,
      head_hash TEXT NOT NULL,
      signed_at TEXT NOT NULL,
      public_key TEXT NOT NULL,
      signature TEXT NOT NULL
    )`,
    sql`CREATE TABLE settings (
      name TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
    sql`CREATE TABLE leases (
      name TEXT PRIMARY KEY,
      holder TEXT NOT NULL,
      expires_at TEXT NOT NULL
    )`,
  ];
  for (const statement of statements) await statement.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('the initial schema cannot be rolled back; restore a backup instead');
}
