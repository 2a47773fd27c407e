/**
 * The patient directory store on every backend: upsert after a handshake (a missing profile keeps
 * the stored one), profile deletion that keeps the entry, case-insensitive search in which SQL and
 * LIKE wildcards are only text, and stable pagination.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NeuronError } from '../../src/foundation/errors/index.ts';
import { getPatient, listPatients, setProfile, upsertFromHandshake, type PatientProfile } from '../../src/domains/directory/store.ts';
import type { Db } from '../../src/foundation/storage/index.ts';
import { testDatabases } from '../helpers/databases.ts';

const T1 = '2026-03-01T09:00:00.000Z';
const T2 = '2026-03-01T10:00:00.000Z';
const T3 = '2026-03-01T11:00:00.000Z';

function entry(
  patientAgentId: string,
  profile: PatientProfile | null = null,
): { patientAgentId: string; patientPublicKey: string; patientEndpoint: string; profile: PatientProfile | null } {
  return { patientAgentId, patientPublicKey: 'B'.repeat(43), patientEndpoint: `wss://${patientAgentId}.example/agent`, profile };
}

async function search(db: Db, text: string): Promise<string[]> {
  return (await listPatients(db, { search: text, limit: 100 })).items.map((p) => p.patientAgentId);
}

for (const backend of testDatabases()) {
  describe(`directory store (${backend.name})`, () => {
    it('a different key cannot take over an entry while a live relationship is held under the current key', async (t) => {
      const { storage } = await backend.open(t);
      const { insertActive, setStatus } = await import('../../src/domains/relationships/store.ts');
      await upsertFromHandshake(storage.db, entry('agent-held', { display_name: 'Test Patient Held' }), T1);
      await insertActive(storage.db, {
        id: 'rel-held',
        patientAgentId: 'agent-held',
        patientPublicKey: 'B'.repeat(43),
        patientEndpoint: 'wss://agent-held.example/agent',
        providerNpi: '1679576722',
        consentedActions: ['office_visit'],
        consentTokenPayload: 'p',
        consentTokenSignature: 's',
        tokenDialect: 'A',
        consentExpiresAt: T3,
        connectionId: null,
        status: 'active',
        statusReason: null,
        establishedAt: T1,
        lastHandshakeAt: T1,
        updatedAt: T1,
      });
      // A stranger claims the same agent id with its own key (through another provider).
      await upsertFromHandshake(
        storage.db,
        {
          patientAgentId: 'agent-held',
          patientPublicKey: 'Z'.repeat(43),
          patientEndpoint: 'wss://attacker.example/agent',
          profile: { display_name: 'Someone Else' },
        },
        T2,
      );
      const kept = await getPatient(storage.db, 'agent-held');
      assert.equal(kept?.patientPublicKey, 'B'.repeat(43));
      assert.equal(kept?.patientEndpoint, 'wss://agent-held.example/agent');
      assert.deepEqual(kept?.profile, { display_name: 'Test Patient Held' });

      // Once the relationship is terminated, a new key may take the entry over (key rotation).
      await setStatus(storage.db, 'rel-held', 'terminated', 'rotated', T2);
      await upsertFromHandshake(
        storage.db,
        { patientAgentId: 'agent-held', patientPublicKey: 'Y'.repeat(43), patientEndpoint: 'wss://new.example/agent', profile: null },
        T3,
      );
      assert.equal((await getPatient(storage.db, 'agent-held'))?.patientPublicKey, 'Y'.repeat(43));
    });

    it('a handshake creates the entry; later ones refresh it and keep the profile unless a new one is given', async (t) => {
      const { storage } = await backend.open(t);
      await upsertFromHandshake(storage.db, entry('agent-1', { display_name: 'Test Patient One', preferred_language: 'en' }), T1);
      assert.deepEqual(await getPatient(storage.db, 'agent-1'), {
        patientAgentId: 'agent-1',
        patientPublicKey: 'B'.repeat(43),
        patientEndpoint: 'wss://agent-1.example/agent',
        profile: { display_name: 'Test Patient One', preferred_language: 'en' },
        firstSeenAt: T1,
        lastSeenAt: T1,
        updatedAt: T1,
      });

      // No profile in this handshake: the stored one stays; the endpoint and key are refreshed.
      await upsertFromHandshake(
        storage.db,
        { ...entry('agent-1'), patientEndpoint: 'wss://moved.example/agent', patientPublicKey: 'C'.repeat(43) },
        T2,
      );
      const refreshed = await getPatient(storage.db, 'agent-1');
      assert.deepEqual(refreshed?.profile, { display_name: 'Test Patient One', preferred_language: 'en' });
      assert.equal(refreshed?.patientEndpoint, 'wss://moved.example/agent');
      assert.equal(refreshed?.patientPublicKey, 'C'.repeat(43));
      assert.equal(refreshed?.firstSeenAt, T1);
      assert.equal(refreshed?.lastSeenAt, T2);

      // A new profile replaces the old one entirely.
      await upsertFromHandshake(storage.db, entry('agent-1', { display_name: 'Test Patient Renamed' }), T3);
      assert.deepEqual((await getPatient(storage.db, 'agent-1'))?.profile, { display_name: 'Test Patient Renamed' });
      assert.equal(await getPatient(storage.db, 'agent-unknown'), null);
    });

    it('deleting the profile keeps the entry; a later handshake without a profile does not bring it back', async (t) => {
      const { storage } = await backend.open(t);
      await upsertFromHandshake(storage.db, entry('agent-1', { display_name: 'Test Patient', date_of_birth: '1990-01-01' }), T1);
      assert.equal(await setProfile(storage.db, 'agent-1', null, T2), true);
      const deleted = await getPatient(storage.db, 'agent-1');
      assert.equal(deleted?.profile, null);
      assert.equal(deleted?.updatedAt, T2);
      assert.equal(deleted?.firstSeenAt, T1, 'the entry itself stays');
      await upsertFromHandshake(storage.db, entry('agent-1'), T3);
      assert.equal((await getPatient(storage.db, 'agent-1'))?.profile, null);
      assert.equal(await setProfile(storage.db, 'agent-unknown', { display_name: 'X' }, T2), false);
      assert.equal(await setProfile(storage.db, 'agent-1', { display_name: 'Set By Front Desk' }, T3), true);
      assert.deepEqual((await getPatient(storage.db, 'agent-1'))?.profile, { display_name: 'Set By Front Desk' });
    });

    it('search is a case-insensitive substring of the agent id or display name', async (t) => {
      const { storage } = await backend.open(t);
      await upsertFromHandshake(storage.db, entry('Agent-Alpha', { display_name: 'Test Patient Rivera' }), T1);
      await upsertFromHandshake(storage.db, entry('agent-beta', { display_name: 'Test Patient Okafor' }), T1);
      await upsertFromHandshake(storage.db, entry('agent-gamma'), T1);
      assert.deepEqual(await search(storage.db, 'ALPHA'), ['Agent-Alpha']);
      assert.deepEqual(await search(storage.db, 'rIVERA'), ['Agent-Alpha']);
      assert.deepEqual(await search(storage.db, 'agent-'), ['Agent-Alpha', 'agent-beta', 'agent-gamma'].sort());
      assert.deepEqual(await search(storage.db, 'nobody'), []);
      assert.equal((await listPatients(storage.db, { search: '', limit: 10 })).items.length, 3, 'empty search lists all');
    });

    it('SQL-looking search text is only text', async (t) => {
      const { storage } = await backend.open(t);
      await upsertFromHandshake(storage.db, entry('agent-1', { display_name: "Test O'Patient" }), T1);
      await upsertFromHandshake(storage.db, entry('agent-2', { display_name: 'Test Patient' }), T1);
      for (const text of ["' OR '1'='1", "'; DROP TABLE patients; --", '") OR 1=1 --', "agent-1' --"]) {
        assert.deepEqual(await search(storage.db, text), [], text);
      }
      assert.deepEqual(await search(storage.db, "o'pat"), ['agent-1'], 'a quote matches a quote');
      assert.equal((await listPatients(storage.db, { limit: 10 })).items.length, 2, 'table intact');
    });

    it('search folds case beyond ASCII alike on both dialects', async (t) => {
      const { storage } = await backend.open(t);
      await upsertFromHandshake(storage.db, entry('agent-1', { display_name: 'Test ÉLODIE Müller' }), T1);
      await upsertFromHandshake(storage.db, entry('AGENT-ÅSA'), T1);
      assert.deepEqual(await search(storage.db, 'élodie'), ['agent-1']);
      assert.deepEqual(await search(storage.db, 'MÜLLER'), ['agent-1']);
      assert.deepEqual(await search(storage.db, 'åsa'), ['AGENT-ÅSA']);
    });

    it('LIKE wildcards in search text match only themselves', async (t) => {
      const { storage } = await backend.open(t);
      await upsertFromHandshake(storage.db, entry('agent-100%-sure', { display_name: 'Test Patient' }), T1);
      await upsertFromHandshake(storage.db, entry('agent_under', { display_name: 'Test Patient' }), T1);
      await upsertFromHandshake(storage.db, entry('agent-1000', { display_name: 'Test Patient' }), T1);
      await upsertFromHandshake(storage.db, entry('agentXunder', { display_name: 'Test Patient' }), T1);
      await upsertFromHandshake(storage.db, entry('back\\slash', { display_name: 'Test Patient' }), T1);
      assert.deepEqual(await search(storage.db, '%'), ['agent-100%-sure']);
      assert.deepEqual(await search(storage.db, '100%'), ['agent-100%-sure']);
      assert.deepEqual(await search(storage.db, '_'), ['agent_under']);
      assert.deepEqual(await search(storage.db, 't_u'), ['agent_under']);
      assert.deepEqual(await search(storage.db, '\\'), ['back\\slash']);
      assert.deepEqual(await search(storage.db, 'k\\s'), ['back\\slash']);
    });

    it('search looks at the display name only, never at key names or other profile fields', async (t) => {
      const { storage } = await backend.open(t);
      await upsertFromHandshake(
        storage.db,
        entry('agent-1', { display_name: 'Test Rivera', date_of_birth: '1990-01-01', preferred_language: 'es' }),
        T1,
      );
      await upsertFromHandshake(storage.db, entry('agent-2', { preferred_language: 'en' }), T1);
      assert.deepEqual(await search(storage.db, 'rivera'), ['agent-1']);
      assert.deepEqual(await search(storage.db, 'display'), []);
      assert.deepEqual(await search(storage.db, 'language'), []);
      assert.deepEqual(await search(storage.db, '1990'), [], 'date of birth is not searchable');
      assert.deepEqual(await search(storage.db, '"'), []);
    });

    it('pages through the directory once each, in agent id order, while new entries arrive', async (t) => {
      const { storage } = await backend.open(t);
      const ids = Array.from({ length: 10 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
      for (const id of ids) await upsertFromHandshake(storage.db, entry(id), T1);
      const seen: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 20; page++) {
        const result = await listPatients(storage.db, { limit: 4, ...(after === undefined ? {} : { after }) });
        seen.push(...result.items.map((p) => p.patientAgentId));
        // An entry that sorts before the cursor arrives mid-way; it is not seen twice or out of order.
        if (page === 0) await upsertFromHandshake(storage.db, entry('agent-00a'), T2);
        if (result.next === null) break;
        after = result.next;
      }
      assert.deepEqual(seen, ids);
      await assert.rejects(
        listPatients(storage.db, { after: "'; DROP TABLE patients; --", limit: 4 }),
        (error: unknown) => error instanceof NeuronError && error.code === 'INVALID_CURSOR',
      );
    });
  });
}
