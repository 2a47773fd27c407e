import { sql, type Kysely } from 'kysely';

/**
 * Every handshake looks up the relationships of one patient agent with one provider, in any
 * status (a returning patient whose earlier relationship was terminated or suspended). The
 * partial unique index covers only active rows; this one serves the rest without walking every
 * relationship of the provider.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX relationships_by_patient ON relationships (patient_agent_id, provider_npi, established_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX relationships_by_patient`.execute(db);
}
