import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NeuronError } from '../errors/index.ts';
import { JsonFileRegistryStateStore, MemoryRegistryStateStore, type RegistrationRecord } from './state.ts';

const RECORD: RegistrationRecord = {
  registrationId: '00000000-0000-4000-8000-000000000001',
  bearerToken: 'synthetic-test-token',
  registryUrl: 'http://127.0.0.1:9/',
  organizationNpi: '1245319599',
  endpointUrl: 'wss://neuron.example.test/ws/handshake',
  registeredAt: '2025-01-01T00:00:00.000Z',
  status: 'registered',
  lastHeartbeatAt: null,
  consecutiveFailures: 0,
  lastError: null,
};

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'neuron-registry-state-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('JsonFileRegistryStateStore', () => {
  it('starts empty, round-trips, and survives a new instance', async () => {
    await withDir(async (dir) => {
      const file = path.join(dir, 'nested', 'registry.json');
      const store = new JsonFileRegistryStateStore(file);
      assert.equal(await store.load(), null);
      assert.equal((await store.loadProviderStates()).size, 0);
      await store.save(RECORD);
      await store.saveProviderState('1679576722', { npi: '1679576722', state: 'registered', lastError: null, updatedAt: RECORD.registeredAt });

      const reopened = new JsonFileRegistryStateStore(file);
      assert.deepEqual(await reopened.load(), RECORD);
      assert.equal((await reopened.loadProviderStates()).get('1679576722')?.state, 'registered');

      await reopened.clear();
      assert.equal(await new JsonFileRegistryStateStore(file).load(), null);
    });
  });

  it('writes owner-only files atomically, leaving no temp files', async () => {
    await withDir(async (dir) => {
      const file = path.join(dir, 'registry.json');
      const store = new JsonFileRegistryStateStore(file);
      // Many concurrent writes are serialized; every one of them lands.
      await Promise.all([
        store.save(RECORD),
        ...['1679576722', '1376841239', '1003000126', '1234567893'].map((npi) =>
          store.saveProviderState(npi, { npi, state: 'pending', lastError: null, updatedAt: RECORD.registeredAt }),
        ),
      ]);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.deepEqual(await readdir(dir), ['registry.json']);
      assert.equal((await new JsonFileRegistryStateStore(file).loadProviderStates()).size, 4);
    });
  });

  it('tightens a group- or world-readable file on load', async () => {
    await withDir(async (dir) => {
      const file = path.join(dir, 'registry.json');
      await writeFile(file, JSON.stringify({ version: 1, registration: RECORD, providers: {} }));
      await chmod(file, 0o644);
      assert.deepEqual(await new JsonFileRegistryStateStore(file).load(), RECORD);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
    });
  });

  it('refuses a corrupt or incomplete file instead of treating it as empty', async () => {
    await withDir(async (dir) => {
      const file = path.join(dir, 'registry.json');
      await writeFile(file, '{ not json', { mode: 0o600 });
      await assert.rejects(new JsonFileRegistryStateStore(file).load(), NeuronError);
      await writeFile(file, JSON.stringify({ version: 1, registration: { registrationId: 'x' }, providers: {} }));
      await assert.rejects(new JsonFileRegistryStateStore(file).load(), NeuronError);
    });
  });
});

describe('MemoryRegistryStateStore', () => {
  it('hands out copies', async () => {
    const store = new MemoryRegistryStateStore();
    await store.save(RECORD);
    const loaded = await store.load();
    assert.ok(loaded);
    loaded.status = 'invalid';
    assert.equal((await store.load())?.status, 'registered');
  });
});
