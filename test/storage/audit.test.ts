/**
 * The audit log on every backend: appends chain, checkpoints sign the head, verification finds
 * changed, deleted, reordered and truncated entries, an append rolled back with its transaction
 * leaves no gap, and concurrent appends from several instances (separate pools on PostgreSQL,
 * serialised by the advisory lock) keep one unbroken chain.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuditLog, verifyAuditChain, type VerifyResult } from '../../src/domains/audit/service.ts';
import { GENESIS_HASH } from '../../src/domains/audit/chain.ts';
import { ensureOrganizationKey, loadOrganizationKey, type OrganizationKey } from '../../src/foundation/organization/keys.ts';
import { createLogger } from '../../src/foundation/observability/logger.ts';
import type { Storage } from '../../src/foundation/storage/index.ts';
import { testDatabases, type TestBackend } from '../helpers/databases.ts';

/** Verifies as `neuron audit verify` does, trusting the key the test created (pinned in a real data directory). */
async function verifyWithPinnedKey(storage: Storage): Promise<VerifyResult> {
  const key = await loadOrganizationKey(storage.db);
  return verifyAuditChain(storage.db, { trustedKeys: new Set([key!.publicKey]), heads: [] });
}

const logger = createLogger({ level: 'silent', pretty: 'never' });

interface AuditOn {
  storage: Storage;
  audit: AuditLog;
  key: OrganizationKey;
  /** The same log through another instance (another pool on PostgreSQL). */
  openPeer: () => Promise<{ storage: Storage; audit: AuditLog }>;
}

async function auditOn(backend: TestBackend, t: Parameters<TestBackend['open']>[0], entries = 0): Promise<AuditOn> {
  const database = await backend.open(t);
  const { key } = await ensureOrganizationKey(database.storage.db);
  const audit = new AuditLog({ storage: database.storage, key, logger });
  for (let i = 1; i <= entries; i++) await audit.record({ type: 'test.event', actor: 'system', details: { n: i } });
  return {
    storage: database.storage,
    audit,
    key,
    openPeer: async () => {
      const storage = await database.openPeer({ poolMax: 4 });
      return { storage, audit: new AuditLog({ storage, key, logger }) };
    },
  };
}

for (const backend of testDatabases()) {
  describe(`audit log (${backend.name})`, () => {
    it('entries chain from the genesis hash, and the chain verifies', async (t) => {
      const { storage, audit } = await auditOn(backend, t, 5);
      const entries = await audit.list({ limit: 10 });
      assert.deepEqual(
        entries.map((e) => e.seq),
        [1, 2, 3, 4, 5],
      );
      assert.equal(entries[0]!.prev_hash, GENESIS_HASH);
      for (let i = 1; i < entries.length; i++) assert.equal(entries[i]!.prev_hash, entries[i - 1]!.hash);
      assert.deepEqual(await verifyWithPinnedKey(storage), {
        ok: true,
        entries: 5,
        checkpoints: 0,
        treeHeads: 5,
        firstBadSeq: null,
        badTreeHead: null,
        problem: null,
      });
      assert.deepEqual(
        (await audit.list({ after: 3, limit: 10 })).map((e) => e.seq),
        [4, 5],
      );
    });

    it('an append rolled back with its transaction leaves no entry and no gap', async (t) => {
      const { storage, audit } = await auditOn(backend, t, 2);
      await assert.rejects(
        storage.transaction(async (trx) => {
          await audit.append(trx, { type: 'handshake.completed', actor: 'patient:agent-1' });
          throw new Error('the handshake failed after the audit append');
        }),
      );
      await audit.record({ type: 'handshake.failed', actor: 'patient:agent-1' });
      const entries = await audit.list({ limit: 10 });
      assert.deepEqual(
        entries.map((e) => [e.seq, e.event_type]),
        [
          [1, 'test.event'],
          [2, 'test.event'],
          [3, 'handshake.failed'],
        ],
      );
      assert.equal((await verifyWithPinnedKey(storage)).ok, true);
    });

    it('checkpoints sign the head once per move, and verify', async (t) => {
      const { storage, audit, key } = await auditOn(backend, t, 3);
      assert.deepEqual(await audit.checkpoint(), { seq: 3 });
      assert.equal(await audit.checkpoint(), null, 'head has not moved');
      await audit.record({ type: 'test.event', actor: 'system' });
      assert.deepEqual(await audit.checkpoint(), { seq: 4 });
      const checkpoints = await storage.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
      assert.deepEqual(
        checkpoints.map((c) => [c.seq, c.public_key]),
        [
          [3, key.publicKey],
          [4, key.publicKey],
        ],
      );
      assert.deepEqual(await verifyWithPinnedKey(storage), {
        ok: true,
        entries: 4,
        checkpoints: 2,
        treeHeads: 4,
        firstBadSeq: null,
        badTreeHead: null,
        problem: null,
      });
    });

    it('a changed entry is found at its sequence number', async (t) => {
      const { storage } = await auditOn(backend, t, 6);
      await storage.db.updateTable('audit_log').set({ details: '{"n":99}' }).where('seq', '=', 4).execute();
      const result = await verifyWithPinnedKey(storage);
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, 4);
      assert.match(result.problem ?? '', /changed/);
    });

    it('a changed entry whose hash was recomputed fails its own tree head, and without tree heads the next link', async (t) => {
      const { storage } = await auditOn(backend, t, 6);
      const { entryHash } = await import('../../src/domains/audit/chain.ts');
      const four = await storage.db.selectFrom('audit_log').selectAll().where('seq', '=', 4).executeTakeFirstOrThrow();
      const forged = { ...four, actor: 'someone-else' };
      await storage.db
        .updateTable('audit_log')
        .set({ actor: forged.actor, hash: entryHash(forged) })
        .where('seq', '=', 4)
        .execute();
      const result = await verifyWithPinnedKey(storage);
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, 4);
      assert.equal(result.badTreeHead, 4);
      await storage.db.deleteFrom('audit_tree_heads').execute();
      assert.equal((await verifyWithPinnedKey(storage)).firstBadSeq, 5);
    });

    it('a deleted entry is found as a gap', async (t) => {
      const { storage } = await auditOn(backend, t, 6);
      await storage.db.deleteFrom('audit_log').where('seq', '=', 3).execute();
      const result = await verifyWithPinnedKey(storage);
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, 3);
      assert.match(result.problem ?? '', /missing or out of order/);
    });

    it('swapped entries are found', async (t) => {
      const { storage } = await auditOn(backend, t, 6);
      const two = await storage.db.selectFrom('audit_log').selectAll().where('seq', '=', 2).executeTakeFirstOrThrow();
      const five = await storage.db.selectFrom('audit_log').selectAll().where('seq', '=', 5).executeTakeFirstOrThrow();
      await storage.transaction(async (trx) => {
        const { seq: _two, ...twoFields } = two;
        const { seq: _five, ...fiveFields } = five;
        await trx.updateTable('audit_log').set(fiveFields).where('seq', '=', 2).execute();
        await trx.updateTable('audit_log').set(twoFields).where('seq', '=', 5).execute();
      });
      const result = await verifyWithPinnedKey(storage);
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, 2);
    });

    it('a truncated tail is found through the last checkpoint, and a forged checkpoint is refused', async (t) => {
      const { storage, audit } = await auditOn(backend, t, 5);
      await audit.checkpoint();
      await storage.db.deleteFrom('audit_log').where('seq', '>=', 4).execute();
      const truncated = await verifyWithPinnedKey(storage);
      assert.equal(truncated.ok, false);
      assert.equal(truncated.firstBadSeq, 4);

      const other = await auditOn(backend, t, 3);
      await other.audit.checkpoint();
      await other.storage.db.updateTable('audit_checkpoints').set({ signed_at: '2000-01-01T00:00:00.000Z' }).execute();
      const forged = await verifyWithPinnedKey(other.storage);
      assert.equal(forged.ok, false);
      assert.match(forged.problem ?? '', /invalid signature/);
    });

    it('concurrent appends from two instances keep one unbroken chain', async (t) => {
      const first = await auditOn(backend, t);
      // PostgreSQL: a second pool, as a second instance would have; SQLite: the same process.
      const second = await first.openPeer();
      const perInstance = 50;
      await Promise.all([
        ...Array.from({ length: perInstance }, (_, i) => first.audit.record({ type: 'race', actor: 'instance-1', details: { i } })),
        ...Array.from({ length: perInstance }, (_, i) => second.audit.record({ type: 'race', actor: 'instance-2', details: { i } })),
        // Checkpoints in the middle of it sign heads that really exist.
        first.audit.checkpoint(),
        second.audit.checkpoint(),
      ]);
      await first.audit.checkpoint();
      const result = await verifyWithPinnedKey(first.storage);
      assert.equal(result.problem, null);
      assert.equal(result.ok, true);
      assert.equal(result.entries, 2 * perInstance);
      const actors = await first.storage.db.selectFrom('audit_log').select('actor').execute();
      assert.equal(actors.filter((a) => a.actor === 'instance-2').length, perInstance, 'both instances wrote');
      // One linear tree: each commit extended the latest head whichever instance sealed it, and
      // verify matched every head's root against the one tree rebuilt from the entries.
      const sizes = (await first.storage.db.selectFrom('audit_tree_heads').select('tree_size').orderBy('tree_size').execute()).map(
        (h) => h.tree_size,
      );
      assert.deepEqual(
        sizes,
        Array.from({ length: 2 * perInstance }, (_, i) => i + 1),
        'one tree head per commit, none forked or skipped',
      );
    });

    it('a commit group is sealed by one tree head covering only the units that committed', async (t) => {
      const { storage, audit } = await auditOn(backend, t, 1);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          storage.groupTransaction(async (trx) => {
            await audit.append(trx, { type: 'grouped', actor: 'system', details: { i } });
            if (i % 3 === 1) throw new Error('rolled back to its savepoint after the append');
          }),
        ),
      );
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 7);
      const result = await verifyWithPinnedKey(storage);
      assert.equal(result.ok, true, result.problem ?? '');
      assert.equal(result.entries, 8);
      const heads = await storage.db.selectFrom('audit_tree_heads').select('tree_size').orderBy('tree_size').execute();
      assert.equal(heads[heads.length - 1]!.tree_size, 8);
      // SQLite shares one commit (one head) for the group; PostgreSQL commits each unit alone.
      assert.equal(heads.length, backend.name === 'sqlite' ? 2 : 8);
    });

    it('concurrent handshake-sized transactions with appends from two instances stay consistent', async (t) => {
      // Each transaction writes a change and its audit entry; half of them fail after appending.
      const first = await auditOn(backend, t);
      const second = await first.openPeer();
      const storages = [first.storage, second.storage];
      const logs = [first.audit, second.audit];
      const outcomes = await Promise.allSettled(
        Array.from({ length: 40 }, (_, i) =>
          storages[i % 2]!.transaction(async (trx) => {
            await trx
              .insertInto('settings')
              .values({ name: `s-${i}`, value: 'v', updated_at: '2026-03-01T09:00:00.000Z' })
              .execute();
            await logs[i % 2]!.append(trx, { type: 'setting.changed', actor: 'system', details: { name: `s-${i}` } });
            if (i % 4 === 3) throw new Error('failed after the append');
          }),
        ),
      );
      const committed = outcomes.filter((o) => o.status === 'fulfilled').length;
      assert.equal(committed, 30);
      const result = await verifyWithPinnedKey(first.storage);
      assert.equal(result.ok, true, result.problem ?? '');
      assert.equal(result.entries, committed, 'one entry per committed change, none for rolled-back ones');
      assert.equal((await first.storage.db.selectFrom('settings').selectAll().execute()).length, committed);
    });
  });
}
