/**
 * Blocks and the outbox on every backend: block/unblock and pagination; enqueue inside the
 * transaction of the change (so a rolled-back change leaves no notice); webhook fan-out; and the
 * cross-instance claim (forUpdateSkipLocked) never handing one row to two instances.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deleteBlock, insertBlock, isBlocked, listBlocks } from '../../src/domains/blocks/store.ts';
import { enqueue } from '../../src/domains/outbox/store.ts';
import { publishWebhookEvent } from '../../src/domains/webhooks/events.ts';
import { forUpdateSkipLocked, type Storage } from '../../src/foundation/storage/index.ts';
import { testDatabases } from '../helpers/databases.ts';

const AT = '2026-03-01T09:00:00.000Z';
const LATER = '2026-03-01T09:05:00.000Z';

/**
 * The reference claim: one statement that marks up to `limit` due, unclaimed rows as this
 * instance's until `until`, and returns them. (The delivery worker may use its own; this is the
 * shape docs/storage.md recommends.)
 */
async function claim(storage: Storage, instance: string, now: string, until: string, limit: number): Promise<number[]> {
  const due = storage.db
    .selectFrom('outbox')
    .select('seq')
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
    .orderBy('seq')
    .limit(limit)
    .$call((qb) => forUpdateSkipLocked(storage.dialect, qb));
  const rows = await storage.db
    .updateTable('outbox')
    .set({ locked_by: instance, locked_until: until })
    .where('seq', 'in', due)
    .returning('seq')
    .execute();
  return rows.map((r) => r.seq);
}

for (const backend of testDatabases()) {
  describe(`blocks store (${backend.name})`, () => {
    it('block, check, unblock; a second block or unblock changes nothing', async (t) => {
      const { storage } = await backend.open(t);
      const block = { patientAgentId: 'agent-1', reason: 'front desk request', blockedBy: 'api-key:front-desk', createdAt: AT };
      assert.equal(await isBlocked(storage.db, 'agent-1'), false);
      assert.equal(await insertBlock(storage.db, block), true);
      assert.equal(await insertBlock(storage.db, { ...block, reason: 'again', createdAt: LATER }), false);
      assert.equal(await isBlocked(storage.db, 'agent-1'), true);
      assert.deepEqual((await listBlocks(storage.db, { limit: 10 })).items, [block], 'the first block is kept as it was');
      assert.equal(await deleteBlock(storage.db, 'agent-1'), true);
      assert.equal(await deleteBlock(storage.db, 'agent-1'), false);
      assert.equal(await isBlocked(storage.db, 'agent-1'), false);
    });

    it('a block made through one instance is seen at once by another', async (t) => {
      const database = await backend.open(t);
      const peer = await database.openPeer();
      await insertBlock(database.storage.db, { patientAgentId: 'agent-1', reason: null, blockedBy: 'cli', createdAt: AT });
      assert.equal(await isBlocked(peer.db, 'agent-1'), true);
    });

    it('pages through blocks in agent id order', async (t) => {
      const { storage } = await backend.open(t);
      const ids = ['agent-c', 'agent-a', 'agent-e', 'agent-b', 'agent-d'];
      for (const id of ids) await insertBlock(storage.db, { patientAgentId: id, reason: null, blockedBy: 'cli', createdAt: AT });
      const seen: string[] = [];
      let after: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await listBlocks(storage.db, { limit: 2, ...(after === undefined ? {} : { after }) });
        seen.push(...page.items.map((b) => b.patientAgentId));
        if (page.next === null) break;
        after = page.next;
      }
      assert.deepEqual(seen, [...ids].sort());
    });
  });

  describe(`outbox (${backend.name})`, () => {
    it('enqueue writes a pending notice with the exact body, due at once', async (t) => {
      const { storage } = await backend.open(t);
      const body = JSON.stringify({ type: 'relationship.established', npi: '1245319599', note: 'ünïcode ✓' });
      const eventId = await enqueue(
        storage.db,
        { kind: 'provider.relationship', eventType: 'relationship.established', target: '1245319599', body },
        AT,
      );
      const row = await storage.db.selectFrom('outbox').selectAll().where('event_id', '=', eventId).executeTakeFirstOrThrow();
      assert.equal(row.body, body);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempts, 0);
      assert.equal(row.next_attempt_at, AT);
      assert.equal(typeof row.seq, 'number');
      assert.equal(row.locked_by, null);
      // A caller-chosen event id is kept, and a duplicate is refused.
      await enqueue(storage.db, { kind: 'webhook', eventType: 'patient.blocked', target: 'sub-1', body: '{}', eventId: 'evt-fixed' }, AT);
      await assert.rejects(
        enqueue(storage.db, { kind: 'webhook', eventType: 'patient.blocked', target: 'sub-1', body: '{}', eventId: 'evt-fixed' }, AT),
      );
      const seqs = (await storage.db.selectFrom('outbox').select('seq').orderBy('seq').execute()).map((r) => r.seq);
      assert.equal(seqs.length, 2);
      assert.ok(seqs[1]! > seqs[0]!, 'sequence numbers increase');
    });

    it('a notice exists exactly when its change does: a rolled-back transaction leaves none', async (t) => {
      const { storage } = await backend.open(t);
      await assert.rejects(
        storage.transaction(async (trx) => {
          await insertBlock(trx, { patientAgentId: 'agent-1', reason: null, blockedBy: 'cli', createdAt: AT });
          await enqueue(trx, { kind: 'webhook', eventType: 'patient.blocked', target: 'sub-1', body: '{}' }, AT);
          throw new Error('the change failed');
        }),
      );
      assert.equal((await storage.db.selectFrom('outbox').selectAll().execute()).length, 0);
      assert.equal(await isBlocked(storage.db, 'agent-1'), false);
    });

    it('webhook events fan out to each active subscription to that type, one row each', async (t) => {
      const { storage } = await backend.open(t);
      const subscription = (
        id: string,
        events: string[],
        active: number,
      ): Parameters<ReturnType<Storage['db']['insertInto']>['values']>[0] => ({
        id,
        url: `https://hooks.example/${id}`,
        events: JSON.stringify(events),
        secret: 'synthetic-secret',
        label: id,
        created_by: 'cli',
        created_at: AT,
        active,
      });
      await storage.db
        .insertInto('webhook_subscriptions')
        .values([
          subscription('sub-a', ['patient.blocked', 'relationship.established'], 1),
          subscription('sub-b', ['relationship.established'], 1),
          subscription('sub-c', ['patient.blocked'], 0),
        ] as never)
        .execute();
      const queued = await storage.transaction((trx) => publishWebhookEvent(trx, 'patient.blocked', { patient_agent_id: 'agent-1' }, AT));
      assert.equal(queued, 1);
      const rows = await storage.db.selectFrom('outbox').selectAll().execute();
      assert.deepEqual(
        rows.map((r) => [r.kind, r.target, r.event_type]),
        [['webhook', 'sub-a', 'patient.blocked']],
      );
      const body = JSON.parse(rows[0]!.body) as { event_id: string; type: string; data: unknown };
      assert.equal(body.event_id, rows[0]!.event_id);
      assert.deepEqual(body.data, { patient_agent_id: 'agent-1' });
    });

    it('instances claiming due notices at once never get the same one', async (t) => {
      const database = await backend.open(t);
      const total = 60;
      for (let i = 0; i < total; i++)
        await enqueue(database.storage.db, { kind: 'webhook', eventType: 'patient.blocked', target: `sub-${i}`, body: '{}' }, AT);
      // A notice not yet due and one leased by a live claim are left alone.
      await enqueue(
        database.storage.db,
        { kind: 'webhook', eventType: 'patient.blocked', target: 'later', body: '{}' },
        '2026-03-02T00:00:00.000Z',
      );
      const instances =
        database.backend === 'postgres'
          ? [database.storage, ...(await Promise.all([1, 2, 3].map(() => database.openPeer({ poolMax: 3 }))))]
          : [database.storage];
      const claims = await Promise.all(
        Array.from({ length: 12 }, (_, i) => claim(instances[i % instances.length]!, `instance-${i % instances.length}`, AT, LATER, 7)),
      );
      const all = claims.flat();
      assert.equal(new Set(all).size, all.length, 'no notice claimed twice');
      assert.equal(all.length, total, 'every due notice claimed once');
      assert.deepEqual(
        await claim(database.storage, 'instance-x', AT, LATER, 100),
        [],
        'leased rows are not claimed again before the lease ends',
      );
      // When the lease runs out, the notices can be claimed again (a crashed worker's work resumes).
      assert.equal(
        (await claim(database.storage, 'instance-x', '2026-03-01T09:06:00.000Z', '2026-03-01T09:10:00.000Z', 100)).length,
        total,
      );
    });
  });
}
