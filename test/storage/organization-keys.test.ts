/**
 * The organization key on every backend: created once, then loaded by every instance.
 */
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import assert from 'node:assert/strict';
import { ensureOrganizationKey, loadOrganizationKey, verifyOrganizationSignature } from '../../src/foundation/organization/keys.ts';
import { testDatabases } from '../helpers/databases.ts';

for (const backend of testDatabases()) {
  describe(`organization key (${backend.name})`, () => {
    it('is created on first use, then loaded by this and every other instance', async (t) => {
      const database = await backend.open(t);
      assert.equal(await loadOrganizationKey(database.storage.db), null);
      const first = await ensureOrganizationKey(database.storage.db);
      assert.equal(first.created, true);
      const again = await ensureOrganizationKey(database.storage.db);
      assert.equal(again.created, false);
      assert.equal(again.key.id, first.key.id);
      const peer = await database.openPeer();
      const seen = await ensureOrganizationKey(peer.db);
      assert.equal(seen.created, false);
      assert.equal(seen.key.publicKey, first.key.publicKey);
      // The stored private key signs what the public key verifies.
      const message = Buffer.from('synthetic attestation');
      assert.equal(verifyOrganizationSignature(first.key.publicKey, message, seen.key.sign(message)), true);
      assert.equal(first.key.publicKey.length, 43);
    });

    it('instances starting at once on an empty database end up with one key, the same for all', async (t) => {
      const database = await backend.open(t);
      // PostgreSQL: four instances (pools); SQLite: one process interleaving eight starts.
      const instances =
        database.backend === 'postgres'
          ? [database.storage, ...(await Promise.all([1, 2, 3].map(() => database.openPeer({ poolMax: 2 }))))]
          : [database.storage];
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => ensureOrganizationKey(instances[i % instances.length]!.db)));
      assert.equal(new Set(results.map((r) => r.key.id)).size, 1, 'everyone signs with the same key');
      assert.equal(results.filter((r) => r.created).length, 1, 'exactly one instance created it');
      const rows = await database.storage.db.selectFrom('organization_keys').select('id').execute();
      assert.equal(rows.length, 1, 'no losing key was stored');
    });

    it('a database with several active keys keeps the newest active after migration 002', async (t) => {
      const { storage } = await backend.open(t);
      // Make the state the old race could leave behind, then run 002 again over it.
      await sql`DROP INDEX organization_keys_one_active`.execute(storage.db);
      await storage.db
        .insertInto('organization_keys')
        .values([
          { id: 'aa-older', public_key: 'x', private_key_pkcs8: 'x', created_at: '2026-01-01T00:00:00.000Z', active: 1 },
          { id: 'zz-newer', public_key: 'y', private_key_pkcs8: 'y', created_at: '2026-01-01T00:00:00.001Z', active: 1 },
        ])
        .execute();
      await sql`DELETE FROM kysely_migration WHERE name = '002_one_active_organization_key'`.execute(storage.db);
      assert.deepEqual(await storage.migrate(), { applied: ['002_one_active_organization_key'] });
      const active = await storage.db.selectFrom('organization_keys').select('id').where('active', '=', 1).execute();
      assert.deepEqual(
        active.map((r) => r.id),
        ['zz-newer'],
      );
      assert.equal(
        (await storage.db.selectFrom('organization_keys').select('id').execute()).length,
        2,
        'the older key stays for verification',
      );
    });
  });
}
