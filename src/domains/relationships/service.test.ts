import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStorage, type Storage } from '../../foundation/storage/index.ts';
import type { NeuronError } from '../../foundation/errors/index.ts';
import { establishRelationship, type EstablishRequest } from './service.ts';
import { setStatus } from './store.ts';
import { isKnownPatientAgent, upsertFromHandshake } from '../directory/store.ts';

let dir: string;
let storage: Storage;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'neuron-relationships-'));
  storage = await openStorage({
    url: '',
    sqliteFile: path.join(dir, 'neuron.sqlite'),
    sqliteSynchronous: 'NORMAL',
    busyTimeoutMs: 1_000,
    poolMax: 1,
  });
  await storage.migrate();
});
after(async () => {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

const KEY_A = 'A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg';
const KEY_B = 'B6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg';

function request(agent: string, overrides: Partial<EstablishRequest> = {}): Omit<EstablishRequest, 'patientKnown'> {
  return {
    patientAgentId: agent,
    patientPublicKey: KEY_A,
    patientEndpoint: `wss://${agent}.example/agent`,
    providerNpi: '1679576722',
    consentedActions: ['office_visit'],
    consentTokenPayload: 'e30',
    consentTokenSignature: 'A'.repeat(86),
    tokenDialect: 'A',
    consentExpiresAt: '2030-01-01T00:00:00.000Z',
    connectionId: null,
    at: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

// As in a handshake, the directory entry is written in the same transaction (the service relies on it).
const run = (r: Omit<EstablishRequest, 'patientKnown'>) =>
  storage.transaction(async (trx) => {
    const outcome = await establishRelationship(trx, { ...r, patientKnown: await isKnownPatientAgent(trx, r.patientAgentId) });
    await upsertFromHandshake(
      trx,
      { patientAgentId: r.patientAgentId, patientPublicKey: r.patientPublicKey, patientEndpoint: r.patientEndpoint, profile: null },
      r.at,
    );
    return outcome;
  });
const rows = (agent: string) =>
  storage.db.selectFrom('relationships').selectAll().where('patient_agent_id', '=', agent).orderBy('established_at').execute();

test('the first handshake creates an active relationship', async () => {
  const outcome = await run(request('p-new'));
  assert.equal(outcome.status, 'new');
  assert.equal(outcome.relationship.status, 'active');
  const stored = await rows('p-new');
  assert.equal(stored.length, 1);
  assert.equal(stored[0]!.id, outcome.relationship.id);
});

test('the same key again is existing: same id, only last_handshake_at moves', async () => {
  const first = await run(request('p-again', { consentedActions: ['office_visit'] }));
  const second = await run(
    request('p-again', {
      at: '2026-02-01T00:00:00.000Z',
      consentedActions: ['something_else'],
      patientEndpoint: 'wss://moved.example/agent',
    }),
  );
  assert.equal(second.status, 'existing');
  assert.equal(second.relationship.id, first.relationship.id);
  assert.deepEqual(second.relationship.consentedActions, ['office_visit']);
  const stored = await rows('p-again');
  assert.equal(stored.length, 1);
  assert.equal(stored[0]!.last_handshake_at, '2026-02-01T00:00:00.000Z');
  assert.equal(stored[0]!.established_at, '2026-01-01T00:00:00.000Z');
  assert.equal(stored[0]!.patient_endpoint, 'wss://p-again.example/agent');
});

test('another key for an agent id with an active relationship is IDENTITY_MISMATCH and writes nothing', async () => {
  await run(request('p-identity'));
  await assert.rejects(run(request('p-identity', { patientPublicKey: KEY_B, at: '2026-03-01T00:00:00.000Z' })), (e: NeuronError) => {
    assert.equal(e.code, 'IDENTITY_MISMATCH');
    assert.ok(!e.message.includes(KEY_A) && !e.message.includes('p-identity'));
    return true;
  });
  const stored = await rows('p-identity');
  assert.equal(stored.length, 1);
  assert.equal(stored[0]!.last_handshake_at, '2026-01-01T00:00:00.000Z');
});

test('the same agent id with another provider is a separate relationship', async () => {
  await run(request('p-two'));
  const other = await run(request('p-two', { providerNpi: '1376841239', patientPublicKey: KEY_B }));
  assert.equal(other.status, 'new');
  assert.equal((await rows('p-two')).length, 2);
});

test('a suspended relationship is BLOCKED: not revived, not duplicated', async () => {
  const first = await run(request('p-suspended'));
  await setStatus(storage.db, first.relationship.id, 'suspended', 'test', '2026-01-02T00:00:00.000Z');
  await assert.rejects(run(request('p-suspended', { at: '2026-01-03T00:00:00.000Z' })), (e: NeuronError) => e.code === 'BLOCKED');
  const stored = await rows('p-suspended');
  assert.deepEqual(
    stored.map((r) => r.status),
    ['suspended'],
  );
});

test('a terminated relationship stays terminated; the next handshake creates a new one, under any key', async () => {
  const first = await run(request('p-terminated'));
  await setStatus(storage.db, first.relationship.id, 'terminated', 'test', '2026-01-02T00:00:00.000Z');
  const second = await run(request('p-terminated', { patientPublicKey: KEY_B, at: '2026-01-03T00:00:00.000Z' }));
  assert.equal(second.status, 'new');
  assert.notEqual(second.relationship.id, first.relationship.id);
  assert.deepEqual(
    (await rows('p-terminated')).map((r) => r.status),
    ['terminated', 'active'],
  );
  assert.equal(await setStatus(storage.db, first.relationship.id, 'active', null, '2026-01-04T00:00:00.000Z'), null);
});

test('concurrent establishes for one patient and provider leave exactly one active row', async () => {
  const outcomes = await Promise.all(Array.from({ length: 10 }, () => run(request('p-race'))));
  assert.equal(outcomes.filter((o) => o.status === 'new').length, 1);
  assert.equal(new Set(outcomes.map((o) => o.relationship.id)).size, 1);
  assert.equal((await rows('p-race')).length, 1);
});
