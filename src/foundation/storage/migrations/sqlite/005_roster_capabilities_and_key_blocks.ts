import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';

/**
 * Two things issue 13 and issue 15 need:
 *
 * - blocked_keys: a block holds against the public keys the blocked agent presented, so the same
 *   key cannot come back under a new agent id. The primary key serves the handshake's lookup by
 *   key; the second index serves unblocking by agent id.
 * - providers: the registration id becomes a capability (it alone authorizes the provider
 *   CareAgent's heartbeat and disconnect), so only its SHA-256 digest is kept, with a short
 *   prefix for people to tell registrations apart; agent_status records what the CareAgent last
 *   said (connected by a heartbeat, disconnected), null before it said anything. Existing ids are
 *   digested here and their plain copies cleared, so a database reader cannot use them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE blocked_keys (
    patient_public_key TEXT NOT NULL,
    patient_agent_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (patient_public_key, patient_agent_id)
  )`.execute(db);
  await sql`CREATE INDEX blocked_keys_by_agent ON blocked_keys (patient_agent_id)`.execute(db);
  await sql`ALTER TABLE providers ADD COLUMN registration_digest TEXT`.execute(db);
  await sql`ALTER TABLE providers ADD COLUMN registration_prefix TEXT`.execute(db);
  await sql`ALTER TABLE providers ADD COLUMN agent_status TEXT`.execute(db);
  await sql`CREATE UNIQUE INDEX providers_by_registration_digest ON providers (registration_digest)`.execute(db);
  const { rows } = await sql<{
    npi: string;
    registration_id: string;
  }>`SELECT npi, registration_id FROM providers WHERE registration_id IS NOT NULL`.execute(db);
  for (const row of rows) {
    const digest = createHash('sha256').update(row.registration_id, 'utf8').digest('hex');
    // 8 characters, as src/domains/providers/registration.ts shows them (a migration never imports app code).
    const prefix = row.registration_id.slice(0, 8);
    await sql`UPDATE providers SET registration_digest = ${digest}, registration_prefix = ${prefix}, registration_id = NULL WHERE npi = ${row.npi}`.execute(
      db,
    );
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX providers_by_registration_digest`.execute(db);
  await sql`ALTER TABLE providers DROP COLUMN agent_status`.execute(db);
  await sql`ALTER TABLE providers DROP COLUMN registration_prefix`.execute(db);
  await sql`ALTER TABLE providers DROP COLUMN registration_digest`.execute(db);
  await sql`DROP TABLE blocked_keys`.execute(db);
}
