/**
 * The organization key on every backend: created once, then loaded by every instance.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ensureOrganizationKey, loadOrganizationKey, verifyOrganizationSignature } from '../../src/organization/keys.ts';
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
  });
}
