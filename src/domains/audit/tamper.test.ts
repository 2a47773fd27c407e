/**
 * The audit log against someone who can change the database but not the data directory
 * (docs/security.md): each rewrite issue 13 tried is now found by plain verification, which
 * trusts only the key pinned in the data directory and the tree heads kept there; a clean log is
 * never flagged. Real SQLite file, and PostgreSQL when NEURON_TEST_POSTGRES_URL is set (skipped
 * with the reason otherwise), with real data directories in temporary folders.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import { rawPublicKey } from '../../foundation/organization/keys.ts';
import { entryHash, GENESIS_HASH } from './chain.ts';
import { TREE_HEADS_FILE } from './outside.ts';
import type { TreeHead } from './tree-head.ts';
import { testDatabases } from '../../../test/helpers/databases.ts';
import { auditDeployment, fileHeadLines } from '../../../test/helpers/audit-deployment.ts';

async function rechainFrom(storage: Storage, seq: number): Promise<void> {
  const rows = await storage.db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc').execute();
  let previous = rows.find((r) => r.seq === seq - 1)?.hash ?? GENESIS_HASH;
  for (const row of rows.filter((r) => r.seq >= seq)) {
    const hash = entryHash({ ...row, prev_hash: previous });
    await storage.db.updateTable('audit_log').set({ prev_hash: previous, hash }).where('seq', '=', row.seq).execute();
    previous = hash;
  }
}

/** Makes a key of the attacker's the active one in the database (the real key stays, inactive). */
async function insertRogueKey(storage: Storage): Promise<void> {
  const { privateKey } = generateKeyPairSync('ed25519');
  await storage.db.updateTable('organization_keys').set({ active: 0 }).execute();
  await storage.db
    .insertInto('organization_keys')
    .values({
      id: randomUUID(),
      public_key: rawPublicKey(privateKey),
      created_at: isoNow(),
      active: 1,
      private_key_pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    })
    .execute();
}

for (const backend of testDatabases()) {
  describe(`audit tamper detection (${backend.name})`, () => {
    test("a clean log verifies, with its own heads and a witness's", async (t) => {
      const { audit, dataDir } = await auditDeployment(backend, t, 8);
      const witness = JSON.parse(fileHeadLines(dataDir)[3]!) as TreeHead;
      const result = await audit.verify([{ head: witness, source: 'a witness' }]);
      assert.equal(result.ok, true, result.problem ?? '');
      assert.equal(result.entries, 8);
      assert.ok(result.treeHeads >= 8 + 8 + 1, 'database heads, file heads and the witness head');
    });

    test('a truncated tail is found, with or without its tree heads removed', async (t) => {
      for (const removeHeads of [false, true]) {
        const { storage, audit } = await auditDeployment(backend, t, 10);
        await storage.db.deleteFrom('audit_log').where('seq', '>', 7).execute();
        if (removeHeads) {
          await storage.db.deleteFrom('audit_tree_heads').where('tree_size', '>', 7).execute();
          await storage.db.deleteFrom('audit_checkpoints').execute();
        }
        const result = await audit.verify();
        assert.equal(result.ok, false);
        assert.equal(result.firstBadSeq, 8);
        assert.match(result.problem ?? '', /truncated/);
      }
    });

    test('a middle entry rewritten with the chain recomputed is found, even re-sealed with the real key', async (t) => {
      const { storage, reopen } = await auditDeployment(backend, t, 10);
      await storage.db.updateTable('audit_log').set({ details: '{"n":40}' }).where('seq', '=', 4).execute();
      await rechainFrom(storage, 4);
      await storage.db.deleteFrom('audit_tree_heads').execute();
      await storage.db.deleteFrom('audit_tree_nodes').execute();
      // Whoever holds the database holds the key row too: re-seal the rewritten log with it.
      const resealed = await reopen();
      await resealed.audit.tree.sealNow();
      const result = await resealed.audit.verify();
      assert.equal(result.ok, false);
      assert.match(result.problem ?? '', /not consistent with the tree head of size \d+ in the tree-head file/);
      assert.ok(result.badTreeHead !== null && result.badTreeHead >= 4);
    });

    test('a rogue key row and the tree heads signed with it change nothing', async (t) => {
      const { storage, reopen } = await auditDeployment(backend, t, 5);
      await insertRogueKey(storage);
      const rogue = await reopen();
      await rogue.audit.record({ type: 'test.event', actor: 'system', details: { n: 6 } });
      const result = await rogue.audit.verify();
      assert.equal(result.ok, false);
      assert.equal(result.badTreeHead, 6);
      assert.match(result.problem ?? '', /not signed by a trusted organization key/);
    });

    test('the tree-head file deleted or rolled back is found', async (t) => {
      const { audit, dataDir } = await auditDeployment(backend, t, 6);
      // A clean stop: on PostgreSQL the file must cover this directory's own start and stop entries.
      await audit.recordOwn('neuron.stopped', { instance_id: 'test-instance-1' });
      assert.equal((await audit.verify()).ok, true);
      const file = path.join(dataDir, TREE_HEADS_FILE);
      writeFileSync(file, `${fileHeadLines(dataDir).slice(0, 3).join('\n')}\n`);
      const rolledBack = await audit.verify();
      assert.equal(rolledBack.ok, false);
      assert.match(rolledBack.problem ?? '', /rolled back/);
      if (backend.name === 'sqlite') assert.equal(rolledBack.badTreeHead, 4);

      rmSync(file);
      const deleted = await audit.verify();
      assert.equal(deleted.ok, false);
      assert.match(deleted.problem ?? '', /file is missing/);
    });

    test("database and file truncated together still fail against a witness's tree head", async (t) => {
      const { storage, audit, dataDir } = await auditDeployment(backend, t, 9);
      const witness = JSON.parse(fileHeadLines(dataDir)[8]!) as TreeHead;
      await storage.db.deleteFrom('audit_log').where('seq', '>', 5).execute();
      await storage.db.deleteFrom('audit_tree_heads').where('tree_size', '>', 5).execute();
      writeFileSync(path.join(dataDir, TREE_HEADS_FILE), `${fileHeadLines(dataDir).slice(0, 5).join('\n')}\n`);
      assert.equal((await audit.verify()).ok, true, 'consistent locally: only outside evidence can tell');
      const result = await audit.verify([{ head: witness, source: 'witness.json' }]);
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, 6);
      assert.match(result.problem ?? '', /witness\.json/);
    });

    if (backend.name === 'postgres') {
      test("another instance's tree heads are not asked of this data directory's file; its own are", async (t) => {
        const first = await auditDeployment(backend, t, 3);
        const second = await first.instance();
        for (let n = 0; n < 5; n++) await second.audit.record({ type: 'test.event', actor: 'system', details: { n } });
        // The first instance's file ends at size 3; the database's heads go to 9, all signed by the second.
        assert.equal(fileHeadLines(first.dataDir).length, 3);
        const fromFirst = await first.audit.verify();
        assert.equal(fromFirst.ok, true, fromFirst.problem ?? '');
        assert.equal((await second.audit.verify()).ok, true);

        // The second's own start (entry 4) is in its file; rolled back before it, the file is caught.
        writeFileSync(path.join(second.dataDir, TREE_HEADS_FILE), '');
        const rolledBack = await second.audit.verify();
        assert.equal(rolledBack.ok, false);
        assert.match(
          rolledBack.problem ?? '',
          /ends at size 0, but the Neuron on this data directory wrote entry 4 \(neuron\.started\).*rolled back/,
        );
      });
    }
  });
}
