/**
 * Portable text matching (src/foundation/storage/text.ts) on every backend: literal wildcards, Unicode case
 * folding, and JSON field access that never matches key names.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { containsInsensitive, containsPattern, dialectOf, jsonTextField, type Db } from '../../src/foundation/storage/index.ts';
import { testDatabases } from '../helpers/databases.ts';

const AT = '2026-03-01T09:00:00.000Z';

async function addPatient(db: Db, id: string, profile: Record<string, string> | null): Promise<void> {
  await db
    .insertInto('patients')
    .values({
      patient_agent_id: id,
      patient_public_key: 'K'.repeat(43),
      patient_endpoint: 'wss://p.example/a',
      profile: profile === null ? null : JSON.stringify(profile),
      first_seen_at: AT,
      last_seen_at: AT,
      updated_at: AT,
    })
    .execute();
}

async function idsContaining(db: Db, text: string): Promise<string[]> {
  const rows = await db
    .selectFrom('patients')
    .select('patient_agent_id')
    .where(containsInsensitive(sql.ref('patient_agent_id'), text))
    .orderBy('patient_agent_id')
    .execute();
  return rows.map((r) => r.patient_agent_id);
}

async function namesContaining(db: Db, text: string): Promise<string[]> {
  const rows = await db
    .selectFrom('patients')
    .select('patient_agent_id')
    .where(containsInsensitive(jsonTextField(db, sql.ref('profile'), 'display_name'), text))
    .orderBy('patient_agent_id')
    .execute();
  return rows.map((r) => r.patient_agent_id);
}

describe('containsPattern', () => {
  it('lower-cases and escapes every LIKE wildcard and the escape character', () => {
    assert.equal(containsPattern('AbC'), '%abc%');
    assert.equal(containsPattern('100%_\\x'), '%100\\%\\_\\\\x%');
    assert.equal(containsPattern(''), '%%');
  });
});

for (const backend of testDatabases()) {
  describe(`text matching (${backend.name})`, () => {
    it('knows its dialect from any handle', async (t) => {
      const { storage } = await backend.open(t);
      assert.equal(dialectOf(storage.db), backend.name);
      await storage.transaction(async (trx) => assert.equal(dialectOf(trx), backend.name));
    });

    it('% _ and \\ in the searched text match only themselves', async (t) => {
      const { storage } = await backend.open(t);
      for (const id of ['agent-100%-sure', 'agent-1000', 'agent_under', 'agentXunder', 'back\\slash', 'backXslash'])
        await addPatient(storage.db, id, null);
      assert.deepEqual(await idsContaining(storage.db, '%'), ['agent-100%-sure']);
      assert.deepEqual(await idsContaining(storage.db, '100%'), ['agent-100%-sure']);
      assert.deepEqual(await idsContaining(storage.db, '_'), ['agent_under']);
      assert.deepEqual(await idsContaining(storage.db, 't_u'), ['agent_under']);
      assert.deepEqual(await idsContaining(storage.db, '\\'), ['back\\slash']);
      assert.deepEqual(await idsContaining(storage.db, 'k\\s'), ['back\\slash']);
      assert.deepEqual(await idsContaining(storage.db, "'; DROP TABLE patients; --"), []);
      assert.equal((await idsContaining(storage.db, '')).length, 6);
    });

    it('folds case beyond ASCII alike on both dialects', async (t) => {
      const { storage } = await backend.open(t);
      await addPatient(storage.db, 'agent-1', { display_name: 'Test ÉLODIE Müller' });
      await addPatient(storage.db, 'agent-2', { display_name: 'Test Patient' });
      assert.deepEqual(await namesContaining(storage.db, 'élodie'), ['agent-1']);
      assert.deepEqual(await namesContaining(storage.db, 'MÜLLER'), ['agent-1']);
      assert.deepEqual(await namesContaining(storage.db, 'test'), ['agent-1', 'agent-2']);
    });

    it('a JSON field search looks at that field only, never at key names or other fields', async (t) => {
      const { storage } = await backend.open(t);
      await addPatient(storage.db, 'agent-1', { display_name: 'Test Rivera', date_of_birth: '1990-01-01', preferred_language: 'es' });
      await addPatient(storage.db, 'agent-2', { preferred_language: 'en' });
      await addPatient(storage.db, 'agent-3', null);
      assert.deepEqual(await namesContaining(storage.db, 'rivera'), ['agent-1']);
      assert.deepEqual(await namesContaining(storage.db, 'display'), [], 'key names are not searched');
      assert.deepEqual(await namesContaining(storage.db, '_'), [], 'nor the underscore in them');
      assert.deepEqual(await namesContaining(storage.db, '1990'), [], 'nor other fields');
      assert.throws(() => jsonTextField(storage.db, sql.ref('profile'), "x') OR 1=1 --"), RangeError);
    });
  });
}
