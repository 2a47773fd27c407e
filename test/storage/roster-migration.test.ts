/**
 * Migration 005 on both dialects: registration ids issued before it (random UUIDs, kept in plain
 * text) become digests, their plain copies are cleared, and the provider is still found by the id
 * its CareAgent holds; blocked_keys exists with its lookups.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { down as sqliteDown } from '../../src/foundation/storage/migrations/sqlite/005_roster_capabilities_and_key_blocks.ts';
import { down as postgresDown } from '../../src/foundation/storage/migrations/postgres/005_roster_capabilities_and_key_blocks.ts';
import { getProviderByRegistrationDigest } from '../../src/domains/providers/store.ts';
import { registrationDigest } from '../../src/domains/providers/registration.ts';
import { testDatabases } from '../helpers/databases.ts';

const MIGRATION = '005_roster_capabilities_and_key_blocks';
const NPI = '1234567893';

for (const backend of testDatabases()) {
  describe(`migration 005 (${backend.name})`, () => {
    it('digests an existing registration id, clears it, and the holder of the id still finds its provider', async (t) => {
      const { storage } = await backend.open(t);
      await (backend.name === 'postgres' ? postgresDown : sqliteDown)(storage.db as never);
      await sql`DELETE FROM kysely_migration WHERE name = ${MIGRATION}`.execute(storage.db);
      const oldId = randomUUID();
      const at = '2026-01-01T00:00:00.000Z';
      await sql`INSERT INTO providers (npi, name, provider_types, specialty, credentials, status, provider_endpoint, provider_public_key,
        notification_url, registration_id, credential_id, credential_digest, last_seen_at, registry_state, registry_error, created_at, updated_at)
        VALUES (${NPI}, 'Dr. Before', '["physician"]', NULL, '[]', 'pending', NULL, NULL, NULL, ${oldId}, NULL, NULL, NULL, 'unregistered', NULL, ${at}, ${at})`.execute(
        storage.db,
      );

      assert.deepEqual(await storage.migrate(), { applied: [MIGRATION] });
      const row = await storage.db.selectFrom('providers').selectAll().where('npi', '=', NPI).executeTakeFirstOrThrow();
      assert.equal(row.registration_id, null, 'the plain id is gone');
      assert.equal(row.registration_digest, registrationDigest(oldId));
      assert.equal(row.registration_prefix, oldId.slice(0, 8));
      assert.equal(row.agent_status, null);
      assert.equal((await getProviderByRegistrationDigest(storage.db, registrationDigest(oldId)))?.npi, NPI);

      await storage.db.insertInto('blocked_keys').values({ patient_public_key: 'k', patient_agent_id: 'a', created_at: at }).execute();
      assert.equal(
        (await storage.db.selectFrom('blocked_keys').select('patient_agent_id').where('patient_public_key', '=', 'k').execute()).length,
        1,
      );
    });
  });
}
