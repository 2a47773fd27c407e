/**
 * Organization key rotation (docs/security.md "Key rotation"): the verifier follows rotation
 * entries from the pinned genesis key, tree heads before and after a rotation verify, another
 * instance picks the new key up at its next seal, and a rotation not signed by the trusted key is
 * found wherever it sits in the log. SQLite, and PostgreSQL when NEURON_TEST_POSTGRES_URL is set.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import { rawPublicKey } from '../../foundation/organization/keys.ts';
import { entryHash, GENESIS_HASH } from './chain.ts';
import { ORGANIZATION_KEY_FILE, readPinnedKey } from './outside.ts';
import {
  KEY_ROTATION_EVENT,
  keyReachableFromPin,
  pinGenesisKey,
  keyRotationMessage,
  rotateOrganizationKey,
  type KeyRotationDetails,
} from './rotation.ts';
import { latestTreeHead } from './tree.ts';
import { trustFromDataDir } from './service.ts';
import { verifyAuditLog } from './verify.ts';
import { testDatabases } from '../../../test/helpers/databases.ts';
import { auditDeployment, type AuditInstance } from '../../../test/helpers/audit-deployment.ts';

function rotate(instance: AuditInstance): ReturnType<typeof rotateOrganizationKey> {
  return rotateOrganizationKey({ storage: instance.storage, audit: instance.audit, key: instance.key, actor: 'cli' });
}

/** An attacker's key: made the active row, and the details of a rotation to it signed as `signer` says. */
async function forgedRotation(storage: Storage, claimedOld: { id: string; publicKey: string }): Promise<KeyRotationDetails> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const rogue = { id: randomUUID(), publicKey: rawPublicKey(privateKey) };
  await storage.db.updateTable('organization_keys').set({ active: 0 }).execute();
  await storage.db
    .insertInto('organization_keys')
    .values({
      id: rogue.id,
      public_key: rogue.publicKey,
      created_at: isoNow(),
      active: 1,
      private_key_pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    })
    .execute();
  const statement = {
    old_key_id: claimedOld.id,
    old_public_key: claimedOld.publicKey,
    new_key_id: rogue.id,
    new_public_key: rogue.publicKey,
    rotated_at: isoNow(),
  };
  // The attacker has only the rogue key: it signs both halves.
  const signature = sign(null, keyRotationMessage(statement), privateKey).toString('base64url');
  return { ...statement, old_key_signature: signature, new_key_signature: signature };
}

for (const backend of testDatabases()) {
  describe(`organization key rotation (${backend.name})`, () => {
    test('tree heads before and after a rotation verify, from the pinned genesis key and from a copy of the data directory', async (t) => {
      const deployment = await auditDeployment(backend, t, 4);
      const pinnedBefore = readFileSync(path.join(deployment.dataDir, ORGANIZATION_KEY_FILE), 'utf8');
      const oldKey = { id: deployment.key.id, publicKey: deployment.key.publicKey };
      const before = (await latestTreeHead(deployment.storage.db))!;

      const rotated = await rotate(deployment);
      assert.equal(rotated.seq, 5);
      assert.deepEqual(rotated.previous, oldKey);
      assert.equal(deployment.key.id, rotated.next.id, 'the services now sign with the new key');
      const rotationHead = (await latestTreeHead(deployment.storage.db))!;
      assert.equal(rotationHead.tree_size, 5);
      assert.equal(rotationHead.key.public_key, rotated.next.publicKey, "the rotation's own head is the new key's first signature");

      for (let n = 0; n < 3; n++) await deployment.audit.record({ type: 'test.event', actor: 'system', details: { n } });
      const after = (await latestTreeHead(deployment.storage.db))!;
      assert.equal(after.key.public_key, rotated.next.publicKey);
      assert.equal(before.key.public_key, oldKey.publicKey);

      const heads = [
        { head: before, source: 'a witness before' },
        { head: after, source: 'a witness after' },
      ];
      const result = await deployment.audit.verify(heads);
      assert.equal(result.ok, true, result.problem ?? '');
      assert.equal(
        readFileSync(path.join(deployment.dataDir, ORGANIZATION_KEY_FILE), 'utf8'),
        pinnedBefore,
        'the pin stays the genesis key',
      );
      assert.equal(await keyReachableFromPin(deployment.storage.db, readPinnedKey(deployment.dataDir)!, rotated.next.publicKey), true);

      const copy = mkdtempSync(path.join(tmpdir(), 'neuron-audit-copy-'));
      t.after(() => rmSync(copy, { recursive: true, force: true }));
      cpSync(deployment.dataDir, copy, { recursive: true });
      const fromCopy = await verifyAuditLog(
        deployment.storage.db,
        trustFromDataDir(copy, heads, { graceMs: 0, scope: backend.name === 'sqlite' ? 'every' : 'own' }),
      );
      assert.deepEqual({ ...fromCopy }, { ...result });
    });

    test('another instance (or the running Neuron beside the command) signs with the new key from its next commit; a new data directory pins the genesis key', async (t) => {
      const first = await auditDeployment(backend, t, 3);
      const genesis = first.key.publicKey;
      // SQLite: one data directory per database (a command beside the running Neuron); PostgreSQL: one each.
      const second = await first.instance({ sameDataDir: backend.name === 'sqlite' });
      assert.equal(second.key.publicKey, genesis);
      const rotated = await rotate(first);
      assert.equal(second.key.publicKey, genesis, 'stale until it signs again');
      await second.audit.record({ type: 'test.event', actor: 'system', details: { n: 1 } });
      assert.equal(second.key.publicKey, rotated.next.publicKey);
      assert.equal((await latestTreeHead(second.storage.db))!.key.public_key, rotated.next.publicKey);

      const instances = [first, second];
      if (backend.name === 'postgres') instances.push(await first.instance());
      else {
        // On SQLite a second data directory's file would lack the first's heads (AuditTrust.file): its pin only.
        const fresh = mkdtempSync(path.join(tmpdir(), 'neuron-audit-fresh-'));
        t.after(() => rmSync(fresh, { recursive: true, force: true }));
        await pinGenesisKey(first.storage.db, fresh, first.key);
        assert.equal(readPinnedKey(fresh)!.public_key, genesis, 'pinned from the first rotation, not the active key');
      }
      if (instances[2]) assert.equal(readPinnedKey(instances[2].dataDir)!.public_key, genesis, 'pinned from the first rotation');
      for (const instance of instances) {
        const result = await instance.audit.verify();
        assert.equal(result.ok, true, result.problem ?? '');
      }
    });

    test('a forged rotation at the tail is found: signed by the rogue key, or claiming another old key', async (t) => {
      for (const claim of ['the real key', 'the rogue key'] as const) {
        const deployment = await auditDeployment(backend, t, 4);
        const real = { id: deployment.key.id, publicKey: deployment.key.publicKey };
        const forged = await forgedRotation(deployment.storage, real);
        const details =
          claim === 'the real key' ? forged : { ...forged, old_key_id: forged.new_key_id, old_public_key: forged.new_public_key };
        // Written as the Neuron writes entries: chained and sealed, with the rogue key now active.
        const rogue = await deployment.reopen();
        await rogue.audit.record({ type: KEY_ROTATION_EVENT, actor: 'cli', details: { ...details } });
        const result = await rogue.audit.verify();
        assert.equal(result.ok, false, claim);
        assert.equal(result.firstBadSeq, 5, claim);
        assert.match(result.problem ?? '', /entry 5 records a key rotation that does not verify/);
      }
    });

    test('a forged rotation put in the middle, the chain recomputed and re-sealed with the rogue key, is found', async (t) => {
      const deployment = await auditDeployment(backend, t, 6);
      const real = { id: deployment.key.id, publicKey: deployment.key.publicKey };
      const forged = await forgedRotation(deployment.storage, real);
      const db = deployment.storage.db;
      await db
        .updateTable('audit_log')
        .set({ event_type: KEY_ROTATION_EVENT, details: JSON.stringify(forged) })
        .where('seq', '=', 3)
        .execute();
      const rows = await db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc').execute();
      let previous = GENESIS_HASH;
      for (const row of rows) {
        const hash = entryHash({ ...row, prev_hash: previous });
        await db.updateTable('audit_log').set({ prev_hash: previous, hash }).where('seq', '=', row.seq).execute();
        previous = hash;
      }
      await db.deleteFrom('audit_tree_heads').execute();
      await db.deleteFrom('audit_tree_nodes').execute();
      await db.deleteFrom('audit_checkpoints').execute();
      const rogue = await deployment.reopen();
      await rogue.audit.tree.sealNow();
      const result = await rogue.audit.verify();
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, 3);
      assert.match(result.problem ?? '', /key rotation that does not verify/);
      assert.equal(await keyReachableFromPin(db, readPinnedKey(deployment.dataDir)!, rogue.key.publicKey), false);
    });
  });
}
