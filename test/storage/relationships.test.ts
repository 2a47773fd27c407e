/**
 * The relationships store on every backend: one active relationship per patient and provider
 * (decided by the database, including under a real race of concurrent transactions from separate
 * instances), terminated is final, and key-based pagination that stays stable under inserts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { NeuronError } from '../../src/foundation/errors/index.ts';
import type { Storage } from '../../src/foundation/storage/index.ts';
import { encodeCursor } from '../../src/foundation/storage/cursor.ts';
import {
  findActive,
  findLive,
  getRelationship,
  insertActive,
  listRelationships,
  setStatus,
  suspendAllForPatient,
  touchHandshake,
  type Relationship,
} from '../../src/domains/relationships/store.ts';
import { testDatabases } from '../helpers/databases.ts';

const NPI_A = '1245319599';
const NPI_B = '1679576722';

let clock = Date.parse('2026-03-01T09:00:00.000Z');
/** Distinct, increasing timestamps, like real handshakes. */
function nextTime(): string {
  clock += 1_000;
  return new Date(clock).toISOString();
}

function relationship(overrides: Partial<Relationship> = {}): Relationship {
  const at = overrides.establishedAt ?? nextTime();
  return {
    id: randomUUID(),
    patientAgentId: 'patient-agent-1',
    patientPublicKey: 'A'.repeat(43),
    patientEndpoint: 'wss://patient.example/agent',
    providerNpi: NPI_A,
    consentedActions: ['office.schedule', 'office.message'],
    consentTokenPayload: 'eyJzeW50aGV0aWMiOnRydWV9',
    consentTokenSignature: 'c2lnbmF0dXJl',
    tokenDialect: 'neuron-v1',
    consentExpiresAt: '2027-01-01T00:00:00.000Z',
    connectionId: null,
    status: 'active',
    statusReason: null,
    establishedAt: at,
    lastHandshakeAt: at,
    updatedAt: at,
    ...overrides,
  };
}

async function activeCount(storage: Storage, patientAgentId: string, providerNpi: string): Promise<number> {
  const rows = await storage.db
    .selectFrom('relationships')
    .select('id')
    .where('patient_agent_id', '=', patientAgentId)
    .where('provider_npi', '=', providerNpi)
    .where('status', '=', 'active')
    .execute();
  return rows.length;
}

/** Resolves once `count` parties have arrived, so racing transactions really overlap. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return async () => {
    arrived += 1;
    if (arrived === count) open();
    await opened;
  };
}

for (const backend of testDatabases()) {
  describe(`relationships store (${backend.name})`, () => {
    it('insertActive stores the record exactly and refuses a second active one for the pair', async (t) => {
      const { storage } = await backend.open(t);
      const first = relationship();
      assert.equal(await insertActive(storage.db, first), true);
      assert.deepEqual(await getRelationship(storage.db, first.id), first);
      assert.deepEqual(await findActive(storage.db, first.patientAgentId, NPI_A), first);

      const second = relationship();
      assert.equal(await insertActive(storage.db, second), false, 'the unique index decides');
      assert.equal(await getRelationship(storage.db, second.id), null, 'nothing written');

      // Other pairs are independent.
      assert.equal(await insertActive(storage.db, relationship({ providerNpi: NPI_B })), true);
      assert.equal(await insertActive(storage.db, relationship({ patientAgentId: 'patient-agent-2' })), true);

      // Once the active one is terminated, a new one may start; terminated ones do not count.
      await setStatus(storage.db, first.id, 'terminated', 'patient_revoked', nextTime());
      const third = relationship();
      assert.equal(await insertActive(storage.db, third), true);
      assert.equal(await activeCount(storage, 'patient-agent-1', NPI_A), 1);
    });

    it('N concurrent handshakes for one pair create exactly one active relationship', async (t) => {
      const database = await backend.open(t);
      const racers = 16;
      // PostgreSQL: four instances (pools) of four connections, every transaction open at once,
      // all past their "is there one already?" check before anyone inserts. SQLite: one process
      // serialises its transactions on its one connection (BEGIN IMMEDIATE), so they queue.
      const instances =
        database.backend === 'postgres'
          ? [database.storage, ...(await Promise.all([1, 2, 3].map(() => database.openPeer({ poolMax: 4 }))))]
          : [database.storage];
      const allChecked = database.backend === 'postgres' ? barrier(racers) : async () => undefined;
      const outcomes = await Promise.all(
        Array.from({ length: racers }, async (_, i) => {
          const storage = instances[i % instances.length]!;
          return storage.transaction(async (trx) => {
            const existing = await findActive(trx, 'patient-agent-1', NPI_A);
            await allChecked();
            if (existing) return 'existing';
            return (await insertActive(trx, relationship())) ? 'created' : 'lost';
          });
        }),
      );
      assert.equal(outcomes.filter((o) => o === 'created').length, 1, `outcomes: ${outcomes.join(',')}`);
      if (database.backend === 'postgres') {
        assert.equal(outcomes.filter((o) => o === 'lost').length, racers - 1, 'every other racer lost at the index, not at the check');
      }
      assert.equal(await activeCount(database.storage, 'patient-agent-1', NPI_A), 1);
      const total = await database.storage.db
        .selectFrom('relationships')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(Number(total.n), 1, 'losers wrote nothing');
    });

    it('a lost race inside a transaction leaves the transaction usable and its other writes intact', async (t) => {
      const { storage } = await backend.open(t);
      await insertActive(storage.db, relationship());
      await storage.transaction(async (trx) => {
        assert.equal(await insertActive(trx, relationship()), false);
        // ON CONFLICT DO NOTHING is not an error: PostgreSQL does not abort the transaction.
        await trx
          .insertInto('blocks')
          .values({ patient_agent_id: 'x', reason: null, blocked_by: 'test', created_at: nextTime() })
          .execute();
      });
      assert.equal((await storage.db.selectFrom('blocks').selectAll().execute()).length, 1);
    });

    it('setStatus moves between active and suspended but never out of terminated', async (t) => {
      const { storage } = await backend.open(t);
      const r = relationship();
      await insertActive(storage.db, r);
      const suspended = await setStatus(storage.db, r.id, 'suspended', 'organization_paused', nextTime());
      assert.equal(suspended?.status, 'suspended');
      assert.equal(suspended?.statusReason, 'organization_paused');
      assert.equal(await findActive(storage.db, r.patientAgentId, NPI_A), null);
      assert.equal((await findLive(storage.db, r.patientAgentId, NPI_A))?.id, r.id, 'suspended is still live');

      assert.equal((await setStatus(storage.db, r.id, 'active', null, nextTime()))?.status, 'active');
      const terminated = await setStatus(storage.db, r.id, 'terminated', 'patient_revoked', nextTime());
      assert.equal(terminated?.status, 'terminated');
      for (const status of ['active', 'suspended', 'terminated'] as const) {
        assert.equal(await setStatus(storage.db, r.id, status, 'revive', nextTime()), null, `terminated -> ${status} refused`);
      }
      const after = await getRelationship(storage.db, r.id);
      assert.equal(after?.status, 'terminated');
      assert.equal(after?.statusReason, 'patient_revoked');
      assert.equal(await findLive(storage.db, r.patientAgentId, NPI_A), null);
      assert.equal(await setStatus(storage.db, randomUUID(), 'suspended', null, nextTime()), null, 'unknown id');
    });

    it("suspendAllForPatient suspends only that patient's active relationships", async (t) => {
      const { storage } = await backend.open(t);
      const a = relationship();
      const b = relationship({ providerNpi: NPI_B });
      const other = relationship({ patientAgentId: 'patient-agent-2' });
      for (const r of [a, b, other]) await insertActive(storage.db, r);
      await setStatus(storage.db, b.id, 'terminated', 'done', nextTime());
      const ids = await suspendAllForPatient(storage.db, 'patient-agent-1', 'blocked', nextTime());
      assert.deepEqual(ids, [a.id]);
      assert.equal((await getRelationship(storage.db, a.id))?.status, 'suspended');
      assert.equal((await getRelationship(storage.db, b.id))?.status, 'terminated');
      assert.equal((await getRelationship(storage.db, other.id))?.status, 'active');
      assert.deepEqual(await suspendAllForPatient(storage.db, 'patient-agent-9', 'blocked', nextTime()), []);
    });

    it('touchHandshake updates only the handshake and update times', async (t) => {
      const { storage } = await backend.open(t);
      const r = relationship();
      await insertActive(storage.db, r);
      const at = nextTime();
      await touchHandshake(storage.db, r.id, at);
      assert.deepEqual(await getRelationship(storage.db, r.id), { ...r, lastHandshakeAt: at, updatedAt: at });
    });

    it('pages through every relationship once, in order, while new ones arrive', async (t) => {
      const { storage } = await backend.open(t);
      // Several share one established_at, so the id tie-break matters.
      const sameMoment = nextTime();
      const initial = [
        ...Array.from({ length: 4 }, (_, i) => relationship({ patientAgentId: `p-same-${i}`, establishedAt: sameMoment })),
        ...Array.from({ length: 9 }, (_, i) => relationship({ patientAgentId: `p-${i}` })),
      ];
      for (const r of initial) await insertActive(storage.db, r);
      const expectedOrder = [...initial]
        .sort((x, y) => (x.establishedAt === y.establishedAt ? (x.id < y.id ? -1 : 1) : x.establishedAt < y.establishedAt ? -1 : 1))
        .map((r) => r.id);

      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      const added: string[] = [];
      for (;;) {
        const page = await listRelationships(storage.db, { limit: 3, ...(after === undefined ? {} : { after }) });
        seen.push(...page.items.map((r) => r.id));
        pages += 1;
        // Between pages, a new relationship arrives (always later than everything so far).
        if (pages <= 2) {
          const late = relationship({ patientAgentId: `p-late-${pages}` });
          await insertActive(storage.db, late);
          added.push(late.id);
        }
        if (page.next === null) break;
        after = page.next;
        assert.ok(pages < 50, 'pagination ends');
      }
      assert.deepEqual(seen, [...expectedOrder, ...added], 'each exactly once, in order, new ones at the end');
    });

    it('filters combine, and an exact last page has no next cursor', async (t) => {
      const { storage } = await backend.open(t);
      const rows = [
        relationship({ patientAgentId: 'p-1' }),
        relationship({ patientAgentId: 'p-2', providerNpi: NPI_B }),
        relationship({ patientAgentId: 'p-3' }),
        relationship({ patientAgentId: 'p-4' }),
      ];
      for (const r of rows) await insertActive(storage.db, r);
      await setStatus(storage.db, rows[2]!.id, 'suspended', null, nextTime());
      const byProvider = await listRelationships(storage.db, { providerNpi: NPI_A, limit: 10 });
      assert.deepEqual(
        byProvider.items.map((r) => r.patientAgentId),
        ['p-1', 'p-3', 'p-4'],
      );
      assert.equal(byProvider.next, null);
      const active = await listRelationships(storage.db, { providerNpi: NPI_A, status: 'active', limit: 2 });
      assert.deepEqual(
        active.items.map((r) => r.patientAgentId),
        ['p-1', 'p-4'],
      );
      assert.equal(active.next, null, 'exactly limit items left: no further page');
      const window = await listRelationships(storage.db, {
        establishedFrom: rows[1]!.establishedAt,
        establishedTo: rows[3]!.establishedAt,
        limit: 10,
      });
      assert.deepEqual(
        window.items.map((r) => r.patientAgentId),
        ['p-2', 'p-3'],
      );
      const byPatient = await listRelationships(storage.db, { patientAgentId: 'p-2', limit: 10 });
      assert.deepEqual(
        byPatient.items.map((r) => r.providerNpi),
        [NPI_B],
      );
    });

    it('refuses cursors it did not issue, including SQL-looking ones, without touching the data', async (t) => {
      const { storage } = await backend.open(t);
      await insertActive(storage.db, relationship());
      const bad = [
        'not a cursor!',
        "'; DROP TABLE relationships; --",
        Buffer.from('{"a":1}').toString('base64url'),
        encodeCursor(['only-one-part']),
        encodeCursor([1, 'wrong-types']),
        Buffer.from('[').toString('base64url'),
        'A'.repeat(600),
        '',
      ];
      for (const after of bad) {
        await assert.rejects(
          listRelationships(storage.db, { after, limit: 5 }),
          (error: unknown) => error instanceof NeuronError && error.code === 'INVALID_CURSOR',
          `refused: ${after.slice(0, 40)}`,
        );
      }
      // A well-formed cursor with SQL-looking content is just a value to compare with.
      const page = await listRelationships(storage.db, {
        after: encodeCursor(["' OR 1=1 --", "x'); DROP TABLE relationships; --"]),
        limit: 5,
      });
      assert.equal(page.items.length, 1, "'… sorts before digits, so the row comes after it");
      assert.equal((await storage.db.selectFrom('relationships').selectAll().execute()).length, 1);
    });
  });
}
