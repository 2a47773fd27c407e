import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testDatabases, type TestDatabase } from '../../../test/helpers/databases.ts';
import type { Storage } from '../../foundation/storage/index.ts';
import { DatabaseRegistryStateStore, REGISTRATION_SETTING } from './store.ts';
import type { RegistrationRecord } from './state.ts';
import type { RegistryStatusSnapshot } from './types.ts';

const RECORD: RegistrationRecord = {
  registrationId: '6f1c2d3e-0000-4000-8000-000000000001',
  bearerToken: 'synthetic-secret-token',
  registryUrl: 'https://axon.example/',
  organizationNpi: '1245319599',
  endpointUrl: 'wss://neuron.example/ws/handshake',
  registeredAt: '2026-01-01T00:00:00.000Z',
  status: 'registered',
  lastHeartbeatAt: null,
  consecutiveFailures: 0,
  lastError: null,
};

async function insertProvider(storage: Storage, npi: string): Promise<void> {
  const at = new Date().toISOString();
  await storage.db
    .insertInto('providers')
    .values({
      npi,
      name: 'Dr. Synthetic',
      provider_types: '["physician"]',
      specialty: null,
      credentials: '[]',
      status: 'active',
      provider_endpoint: null,
      provider_public_key: null,
      notification_url: null,
      registration_id: null,
      credential_id: null,
      credential_digest: null,
      last_seen_at: null,
      registry_state: 'unregistered',
      registry_error: null,
      created_at: at,
      updated_at: at,
    })
    .execute();
}

for (const backend of testDatabases())
  describe(`DatabaseRegistryStateStore (${backend.name})`, () => {
    let database: TestDatabase;
    let storage: Storage;
    before(async () => {
      database = await backend.open();
      storage = database.storage;
    });
    after(async () => database.close());

    it('round-trips the registration, shared by every store over the same database', async () => {
      const store = new DatabaseRegistryStateStore(storage);
      assert.equal(await store.load(), null);
      await store.save(RECORD);
      await store.save({ ...RECORD, lastHeartbeatAt: '2026-01-01T00:01:00.000Z' });
      const other = new DatabaseRegistryStateStore(storage);
      assert.deepEqual(await other.load(), { ...RECORD, lastHeartbeatAt: '2026-01-01T00:01:00.000Z' });
      const shown = await other.readRegistration();
      assert.ok(shown);
      assert.ok(!JSON.stringify(shown).includes(RECORD.bearerToken), 'the public view has no token');
    });

    it('keeps provider states and mirrors them into the roster row', async () => {
      const store = new DatabaseRegistryStateStore(storage);
      await insertProvider(storage, '1679576722');
      await store.saveProviderState('1679576722', {
        npi: '1679576722',
        state: 'rejected',
        lastError: 'not in the taxonomy',
        updatedAt: '2026-01-01T00:00:00.000Z',
      });
      // A provider no longer on the roster keeps its state in settings.
      await store.saveProviderState('1376841239', {
        npi: '1376841239',
        state: 'removing',
        lastError: null,
        updatedAt: '2026-01-01T00:00:00.000Z',
      });
      const states = await store.loadProviderStates();
      assert.equal(states.get('1679576722')?.state, 'rejected');
      assert.equal(states.get('1376841239')?.state, 'removing');
      const row = await storage.db
        .selectFrom('providers')
        .select(['registry_state', 'registry_error'])
        .where('npi', '=', '1679576722')
        .executeTakeFirstOrThrow();
      assert.deepEqual(row, { registry_state: 'rejected', registry_error: 'not in the taxonomy' });

      // A row recreated with the column default is put back in step.
      await storage.db.deleteFrom('providers').where('npi', '=', '1679576722').execute();
      await insertProvider(storage, '1679576722');
      await store.mirrorProviderStates(['1679576722']);
      const mirrored = await storage.db
        .selectFrom('providers')
        .select('registry_state')
        .where('npi', '=', '1679576722')
        .executeTakeFirstOrThrow();
      assert.equal(mirrored.registry_state, 'rejected');
    });

    it('saves a status snapshot and clears everything on reset', async () => {
      const store = new DatabaseRegistryStateStore(storage);
      const snapshot: RegistryStatusSnapshot = {
        state: 'registered',
        registered: true,
        registrationId: RECORD.registrationId,
        registryUrl: RECORD.registryUrl,
        endpointUrl: RECORD.endpointUrl,
        lastHeartbeatAt: null,
        consecutiveFailures: 0,
        lastError: null,
        remedy: null,
        running: true,
        providers: [],
        updatedAt: '2026-01-01T00:00:00.000Z',
      };
      await store.saveStatus(snapshot);
      assert.deepEqual(await store.loadStatus(), snapshot);
      await store.clear();
      assert.equal(await store.load(), null);
      assert.equal(await store.loadStatus(), null);
      assert.equal((await store.loadProviderStates()).size, 0);
      const row = await storage.db
        .selectFrom('providers')
        .select(['registry_state', 'registry_error'])
        .where('npi', '=', '1679576722')
        .executeTakeFirstOrThrow();
      assert.deepEqual(row, { registry_state: 'unregistered', registry_error: null });
    });

    it('refuses a corrupt registration instead of treating it as none, without quoting it', async () => {
      const store = new DatabaseRegistryStateStore(storage);
      await storage.db
        .insertInto('settings')
        .values({ name: REGISTRATION_SETTING, value: '{"bearerToken":"synthetic-secret-token"', updated_at: new Date().toISOString() })
        .execute();
      await assert.rejects(
        store.load(),
        (error: Error) => /not valid JSON/.test(error.message) && !error.message.includes('synthetic-secret-token'),
      );
      await storage.db
        .updateTable('settings')
        .set({ value: '{"bearerToken":"synthetic-secret-token"}' })
        .where('name', '=', REGISTRATION_SETTING)
        .execute();
      await assert.rejects(store.load(), /incomplete/);
      await store.clear();
    });
  });
