/**
 * Issue 15: the network's provider CareAgent, unmodified. A stand-in sends exactly its calls
 * (register; heartbeat with no Authorization header; disconnect with no header and no body) to a
 * real Neuron and reads the answers as that client does. The registration id is a capability:
 * never stored, never logged whole (the server's pino stream captured at trace level).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../foundation/observability/logger.ts';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { api, createApiKey } from '../../../test/helpers/providers.ts';

const NPI = '1245319599';
const UNKNOWN_ID = 'nreg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

let t: TestNeuron;
let admin: string;
const logLines: string[] = [];

before(async () => {
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  t = await startTestNeuron({ neuronOptions: { logger: createLogger({ level: 'trace', pretty: 'never', destination }) } });
  admin = await createApiKey(t.neuron, ['admin'], 'contract-admin');
});
after(async () => t.stop());

/** The provider agent's Neuron client, call for call: what it sends and what it concludes. */
const providerAgent = {
  async register(body: unknown): Promise<{ status: number; body: any }> {
    const response = await fetch(`${t.url}/v1/providers/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  },
  /** Connected only when the answer is JSON with status "connected" or "reachable"; any error means not. */
  async heartbeat(registrationId: string): Promise<{ connected: boolean; status: number; body: any }> {
    const response = await fetch(`${t.url}/v1/providers/${registrationId}/heartbeat`);
    const body = (await response.json()) as { status?: string };
    return { connected: response.ok && (body.status === 'connected' || body.status === 'reachable'), status: response.status, body };
  },
  /** No header, no body; the client reads the answer as JSON and throws on an error. */
  async disconnect(registrationId: string): Promise<{ status: number; body: any }> {
    const response = await fetch(`${t.url}/v1/providers/${registrationId}/disconnect`, { method: 'POST' });
    return { status: response.status, body: await response.json() };
  },
};

describe('the provider CareAgent contract', () => {
  let registrationId: string;

  test('register, then heartbeat and disconnect with only the registration id, while pending', async () => {
    const registered = await providerAgent.register({ provider_npi: NPI, provider_name: 'Dr. Contract', provider_types: ['physician'] });
    assert.equal(registered.status, 201);
    registrationId = registered.body.registration_id;
    assert.match(registrationId, /^nreg_[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');

    const beat = await providerAgent.heartbeat(registrationId);
    assert.equal(beat.status, 200);
    assert.equal(beat.connected, true);
    assert.equal(beat.body.status, 'connected');
    assert.equal(beat.body.roster_status, 'pending');
    assert.equal(typeof beat.body.last_seen, 'string');
    const seen = await api(t.url, 'GET', `/v1/providers/${NPI}`, { token: admin });
    assert.equal(seen.body.agent_status, 'connected');
    assert.equal(seen.body.last_seen_at, beat.body.last_seen);
    assert.equal(seen.body.registration_id_prefix, registrationId.slice(0, 8));

    const gone = await providerAgent.disconnect(registrationId);
    assert.equal(gone.status, 200);
    assert.equal(gone.body.status, 'disconnected');
    const offline = await api(t.url, 'GET', `/v1/providers/${NPI}`, { token: admin });
    assert.equal(offline.status, 200, 'disconnect keeps the provider on the roster');
    assert.equal(offline.body.agent_status, 'disconnected');
    assert.equal(offline.body.status, 'pending');

    const back = await providerAgent.heartbeat(registrationId);
    assert.equal(back.connected, true);
    assert.equal((await api(t.url, 'GET', `/v1/providers/${NPI}`, { token: admin })).body.agent_status, 'connected');
  });

  test('an unknown or malformed registration id is a 404 problem; a bad credential sent along is a 401', async () => {
    for (const id of [UNKNOWN_ID, '00000000-0000-4000-8000-000000000000', 'x']) {
      for (const call of [
        () => fetch(`${t.url}/v1/providers/${id}/heartbeat`),
        () => fetch(`${t.url}/v1/providers/${id}/disconnect`, { method: 'POST' }),
      ]) {
        const response = await call();
        assert.equal(response.status, 404);
        assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
        assert.equal(((await response.json()) as { code: string }).code, 'NOT_FOUND');
      }
    }
    const badCredential = await api(t.url, 'GET', `/v1/providers/${registrationId}/heartbeat`, { token: 'nprv_not-a-real-credential' });
    assert.equal(badCredential.status, 401, 'a credential sent along must be valid');
  });

  test('the registration id is stored only as a digest and never appears whole in a log line or the audit log', async () => {
    const row = await t.neuron.storage.db.selectFrom('providers').selectAll().where('npi', '=', NPI).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(registrationId));
    assert.equal(row.registration_id, null);
    const audit = await t.neuron.storage.db.selectFrom('audit_log').select('details').execute();
    assert.ok(!audit.some((entry) => entry.details.includes(registrationId)));
    const joined = logLines.join('');
    // Request lines name the route pattern, never the path that carries the capability.
    assert.ok(joined.includes('/v1/providers/:registration_id/heartbeat'), 'the capture saw the heartbeat requests by their route pattern');
    assert.ok(!joined.includes(registrationId), 'the whole registration id is in a log line');
    assert.ok(!joined.includes(registrationId.slice(0, 20)), 'more than a short prefix is in a log line');
  });

  test('POST /v1/consent/verify without a credential: 401 saying which credential and how to get one', async () => {
    const response = await fetch(`${t.url}/v1/consent/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ patient_agent_id: 'did:example:p', provider_npi: NPI, action: 'office_visit' }),
    });
    assert.equal(response.status, 401);
    const problem = (await response.json()) as { code: string; detail: string };
    assert.equal(problem.code, 'UNAUTHENTICATED');
    assert.match(problem.detail, /nprv_/);
    assert.match(problem.detail, /approve/);
    assert.match(problem.detail, /docs\/providers\.md/);
  });
});

describe('heartbeat and disconnect are rate-limited per client address, like registration', () => {
  let limited: TestNeuron;
  before(async () => {
    // 3 per minute: a burst of three, then refused well within the test.
    limited = await startTestNeuron({ config: { api: { register_limit_per_minute: 3 } } });
  });
  after(async () => limited.stop());

  test('over api.register_limit_per_minute: 429 RATE_LIMITED with Retry-After, and registration keeps its own budget', async () => {
    const registered = await api(limited.url, 'POST', '/v1/providers/register', {
      body: { provider_npi: NPI, provider_name: 'Dr. Busy', provider_types: ['physician'] },
    });
    assert.equal(registered.status, 201);
    const id = registered.body.registration_id as string;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${limited.url}/v1/providers/${id}/heartbeat`)).status);
    assert.deepEqual(statuses, [200, 200, 200]);
    const refused = await fetch(`${limited.url}/v1/providers/${id}/disconnect`, { method: 'POST' });
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    assert.equal(((await refused.json()) as { code: string }).code, 'RATE_LIMITED');
    const another = await api(limited.url, 'POST', '/v1/providers/register', {
      body: { provider_npi: '1982743191', provider_name: 'Dr. Next', provider_types: ['physician'] },
    });
    assert.equal(another.status, 201, 'heartbeats did not use up registrations');
  });
});
