/**
 * Per-address limits behind a proxy, through a real Neuron and real sockets:
 * - X-Forwarded-For is ignored from a peer that is not in server.trusted_proxies and honoured from
 *   one that is (127.0.0.1 here), for the API's failed-authentication limit, the provider
 *   self-registration limit and the handshake's per-address cap alike;
 * - handshake.max_pending_per_address refuses an address's upgrade beyond it with 503 +
 *   Retry-After before any WebSocket (like a full queue), and the count returns to zero whichever
 *   way a connection ends: left the queue, timed out in it, completed, failed, auth timeout,
 *   shutdown;
 * - POST /v1/providers/register over api.register_limit_per_minute is 429 RATE_LIMITED with
 *   Retry-After, audited once per address and minute.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startNeuronWithProvider, type TestNeuron } from '../helpers/neuron.ts';
import { auditEntries, eventually } from '../helpers/records.ts';
import {
  authenticate,
  challengeResponse,
  newPatient,
  openRaw,
  pendingUpgrade,
  rawUpgrade,
  upgradeHeaders,
} from '../helpers/raw-handshake.ts';
import { startApiNeuron } from '../helpers/api.ts';

const PROVIDER = '1679576722';
const CLIENT_A = '203.0.113.10';
const CLIENT_B = '198.51.100.20';
const TRUST_LOOPBACK = { trusted_proxies: ['127.0.0.1'] };

function handshakeNeuron(handshake: Record<string, number>, server: Record<string, unknown> = {}): Promise<TestNeuron> {
  return startNeuronWithProvider({ npi: PROVIDER }, { config: { handshake, server } });
}

const addressLoad = (t: TestNeuron) => t.neuron.handshake.addressLoad();

/** A WebSocket that was admitted (rejects when the upgrade is refused); closes resolve `closed`. */
function openWith(t: TestNeuron, headers: Record<string, string>): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(t.handshakeUrl, { perMessageDeflate: false, headers });
    const closed = new Promise<number>((done) => ws.on('close', (code) => done(code)));
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('open', () => resolve({ ws, closed }));
  });
}

function assertAddressLimit(
  answer: { status: number; headers: Record<string, string | string[] | undefined>; body: string },
  retryAfter: string,
): void {
  assert.equal(answer.status, 503, 'refused like a full queue, before any WebSocket');
  assert.equal(answer.headers['retry-after'], retryAfter);
  assert.match(String(answer.headers['content-type']), /application\/problem\+json/);
  assert.equal(JSON.parse(answer.body).code, 'HANDSHAKE_ADDRESS_LIMIT');
}

describe('handshake.max_pending_per_address', () => {
  test('beyond the cap an address gets 503 + Retry-After; its count returns to zero as connections leave, fail and complete', async () => {
    const t = await handshakeNeuron({ max_concurrent_handshakes: 1, max_pending_per_address: 2, retry_after_seconds: 7 });
    try {
      const holder = await openRaw(t.handshakeUrl);
      const queued = pendingUpgrade(t.port);
      await eventually(() => t.neuron.handshake.load().queued === 1, 5_000, 'one upgrade queued');
      assert.deepEqual(addressLoad(t), { addresses: 1, pending: 2 });

      const refused = await rawUpgrade(t.port, '/ws/handshake', upgradeHeaders(t.port));
      assertAddressLimit(refused, '7');
      assert.deepEqual(t.neuron.handshake.load(), { active: 1, queued: 1 }, 'the refusal took no place');
      assert.deepEqual(addressLoad(t), { addresses: 1, pending: 2 }, 'a refusal counts nothing');

      // Queued, then left.
      queued.socket.destroy();
      await eventually(() => addressLoad(t).pending === 1, 5_000, 'the leaver released');
      assert.equal(t.neuron.handshake.load().queued, 0);

      // Failed (a message that is not the protocol): INVALID_MESSAGE, close 4002.
      holder.send('not json');
      assert.equal((await holder.closed).code, 4002);
      await eventually(() => addressLoad(t).pending === 0, 5_000, 'the failed handshake released');

      // Completed.
      const patient = newPatient(`cap-complete-${process.pid}`);
      const raw = await openRaw(t.handshakeUrl);
      assert.equal(addressLoad(t).pending, 1);
      const challenge = await authenticate(raw, patient, PROVIDER);
      raw.send(challengeResponse(patient, challenge['nonce'] as string));
      assert.equal((await raw.next()).type, 'handshake.complete');
      await raw.closed;
      await eventually(() => addressLoad(t).pending === 0, 5_000, 'the completed handshake released');

      assert.deepEqual(addressLoad(t), { addresses: 0, pending: 0 });
      assert.match(
        await t.neuron.metrics.getSingleMetricAsString('neuron_handshakes_total'),
        /outcome="HANDSHAKE_ADDRESS_LIMIT"[^\n]* 1\b/,
      );
    } finally {
      await t.stop();
    }
  });

  test('the count returns to zero after a queue timeout and an auth timeout', async () => {
    // The holder keeps its slot for the auth deadline (1.5 s), well past the queue timeout (200 ms).
    const t = await handshakeNeuron({
      max_concurrent_handshakes: 1,
      max_pending_per_address: 5,
      queue_timeout_ms: 200,
      auth_timeout_ms: 1_500,
    });
    try {
      const holder = await openRaw(t.handshakeUrl);
      const answer = await rawUpgrade(t.port, '/ws/handshake', upgradeHeaders(t.port));
      assert.equal(answer.status, 503);
      assert.equal(JSON.parse(answer.body).code, 'HANDSHAKE_QUEUE_TIMEOUT');
      assert.deepEqual(addressLoad(t), { addresses: 1, pending: 1 }, 'the timed-out upgrade released; the holder still counts');
      assert.equal((await holder.closed).code, 4001, 'AUTH_TIMEOUT');
      await eventually(() => addressLoad(t).pending === 0, 5_000, 'the auth timeout released');
      assert.deepEqual(addressLoad(t), { addresses: 0, pending: 0 });
    } finally {
      await t.stop();
    }
  });

  test('the count returns to zero at shutdown (queued upgrades answered 503, open handshakes closed 1001)', async () => {
    const t = await handshakeNeuron({ max_concurrent_handshakes: 1, max_pending_per_address: 5 });
    let stopped = false;
    try {
      const holder = await openRaw(t.handshakeUrl);
      const queued = pendingUpgrade(t.port);
      await eventually(() => addressLoad(t).pending === 2, 5_000, 'both counted');
      await t.stop();
      stopped = true;
      assert.equal((await holder.closed).code, 1001);
      assert.match(await queued.answer, /^HTTP\/1\.1 503[\s\S]*"code":"SHUTTING_DOWN"/);
      assert.deepEqual(addressLoad(t), { addresses: 0, pending: 0 });
    } finally {
      if (!stopped) await t.stop();
    }
  });

  test('behind a trusted proxy each forwarded client has its own count; an IPv6 client counts by its /64', async () => {
    const t = await handshakeNeuron({ max_concurrent_handshakes: 1, max_pending_per_address: 1, retry_after_seconds: 4 }, TRUST_LOOPBACK);
    try {
      const holder = await openWith(t, { 'x-forwarded-for': CLIENT_A });
      assertAddressLimit(await rawUpgrade(t.port, '/ws/handshake', { ...upgradeHeaders(t.port), 'x-forwarded-for': CLIENT_A }), '4');
      // A client cannot escape by naming another address to the left of what the proxy appended.
      assertAddressLimit(
        await rawUpgrade(t.port, '/ws/handshake', { ...upgradeHeaders(t.port), 'x-forwarded-for': `${CLIENT_B}, ${CLIENT_A}` }),
        '4',
      );
      // Another client behind the same proxy queues normally.
      const other = pendingUpgrade(t.port, { 'x-forwarded-for': CLIENT_B });
      await eventually(() => t.neuron.handshake.load().queued === 1, 5_000, 'the other client queued');
      const v6 = pendingUpgrade(t.port, { 'x-forwarded-for': '2001:db8:1:2::5' });
      await eventually(() => t.neuron.handshake.load().queued === 2, 5_000, 'the IPv6 client queued');
      assertAddressLimit(
        await rawUpgrade(t.port, '/ws/handshake', { ...upgradeHeaders(t.port), 'x-forwarded-for': '2001:db8:1:2::6' }),
        '4',
      );
      assert.deepEqual(addressLoad(t), { addresses: 3, pending: 3 });

      other.socket.destroy();
      v6.socket.destroy();
      holder.ws.close();
      await holder.closed;
      await eventually(() => addressLoad(t).pending === 0, 5_000, 'all released');
      assert.deepEqual(addressLoad(t), { addresses: 0, pending: 0 });
    } finally {
      await t.stop();
    }
  });

  test('from a peer that is not trusted (the default), X-Forwarded-For is ignored', async () => {
    const t = await handshakeNeuron({ max_concurrent_handshakes: 1, max_pending_per_address: 1, retry_after_seconds: 4 });
    try {
      const holder = await openWith(t, { 'x-forwarded-for': CLIENT_A });
      assertAddressLimit(await rawUpgrade(t.port, '/ws/handshake', { ...upgradeHeaders(t.port), 'x-forwarded-for': CLIENT_B }), '4');
      holder.ws.close();
      await holder.closed;
      await eventually(() => addressLoad(t).pending === 0, 5_000, 'released');
    } finally {
      await t.stop();
    }
  });
});

describe('the API failed-authentication limit per client address', () => {
  const BAD_KEY = 'nrn_not_a_real_key';

  test('from a trusted proxy, each forwarded client has its own allowance, and the lockout audits the client address', async () => {
    const t = await startApiNeuron({ config: { api: { auth_failure_limit_per_minute: 2 }, server: TRUST_LOOPBACK } });
    try {
      const as = (client: string) => ({ key: BAD_KEY, headers: { 'x-forwarded-for': client } });
      assert.equal((await t.request('GET', '/v1/relationships', as(CLIENT_A))).status, 401);
      assert.equal((await t.request('GET', '/v1/relationships', as(CLIENT_A))).status, 401);
      const locked = await t.request('GET', '/v1/relationships', { key: t.keys.read, headers: { 'x-forwarded-for': CLIENT_A } });
      assert.equal(locked.status, 429, 'even a valid key from the locked-out client');
      assert.equal(locked.body.code, 'RATE_LIMITED');
      assert.ok(Number(locked.headers.get('retry-after')) >= 1);
      assert.equal(
        (await t.request('GET', '/v1/relationships', as(`${CLIENT_B}, ${CLIENT_A}`))).status,
        429,
        'prepending another address does not help',
      );
      assert.equal(
        (await t.request('GET', '/v1/relationships', as(CLIENT_B))).status,
        401,
        'another client behind the proxy is not locked out',
      );
      assert.equal(
        (await t.request('GET', '/v1/relationships', { key: t.keys.read, headers: { 'x-forwarded-for': CLIENT_B } })).status,
        200,
      );
      const lockouts = await auditEntries(t.neuron, 'api.auth_lockout');
      assert.deepEqual(
        lockouts.map((entry) => entry.details['client_ip']),
        [CLIENT_A],
      );
    } finally {
      await t.stop();
    }
  });

  test('from a peer that is not trusted (the default), X-Forwarded-For is ignored: the peer is locked out', async () => {
    const t = await startApiNeuron({ config: { api: { auth_failure_limit_per_minute: 2 } } });
    try {
      assert.equal((await t.request('GET', '/v1/relationships', { key: BAD_KEY, headers: { 'x-forwarded-for': CLIENT_A } })).status, 401);
      assert.equal((await t.request('GET', '/v1/relationships', { key: BAD_KEY, headers: { 'x-forwarded-for': CLIENT_B } })).status, 401);
      assert.equal(
        (await t.request('GET', '/v1/relationships', { key: BAD_KEY, headers: { 'x-forwarded-for': '192.0.2.99' } })).status,
        429,
      );
      const lockouts = await auditEntries(t.neuron, 'api.auth_lockout');
      assert.deepEqual(
        lockouts.map((entry) => entry.details['client_ip']),
        ['127.0.0.1'],
      );
    } finally {
      await t.stop();
    }
  });
});

describe('POST /v1/providers/register per client address', () => {
  const NPIS = ['1376841239', '1003000126', '1234567893', '1649218926', '1982743191'];
  const registration = (npi: string) => ({
    provider_npi: npi,
    provider_name: `Dr. Synthetic ${npi.slice(-4)}`,
    provider_types: ['physician'],
  });

  test('beyond api.register_limit_per_minute: 429 RATE_LIMITED with Retry-After, audited once; another client behind a trusted proxy is not affected', async () => {
    const t = await startApiNeuron({ config: { api: { register_limit_per_minute: 2 }, server: TRUST_LOOPBACK } });
    try {
      const from = (client: string, npi: string) =>
        t.request('POST', '/v1/providers/register', { body: registration(npi), headers: { 'x-forwarded-for': client } });
      const first = await from(CLIENT_A, NPIS[0]!);
      assert.equal(first.status, 201, first.text);
      assert.match(first.headers.get('ratelimit') ?? '', /^limit=2, remaining=1, reset=\d+$/);
      assert.equal((await from(CLIENT_A, NPIS[1]!)).status, 201);
      const limited = await from(CLIENT_A, NPIS[2]!);
      assert.equal(limited.status, 429);
      assert.match(limited.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(limited.body.code, 'RATE_LIMITED');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      assert.equal((await from(CLIENT_A, NPIS[3]!)).status, 429);
      // Refused before the body is read: an invalid body is refused the same way.
      assert.equal(
        (await t.request('POST', '/v1/providers/register', { body: '{', headers: { 'x-forwarded-for': CLIENT_A } })).status,
        429,
      );
      assert.equal((await from(CLIENT_B, NPIS[2]!)).status, 201, 'another client behind the proxy registers');

      const audited = await auditEntries(t.neuron, 'provider.register_limited');
      assert.equal(audited.length, 1, 'audited once per address and minute');
      assert.equal(audited[0]!.details['client_ip'], CLIENT_A);
      assert.equal(audited[0]!.actor, 'anonymous');
      const roster = await t.neuron.storage.db.selectFrom('providers').select('npi').where('npi', 'in', NPIS).execute();
      assert.deepEqual(roster.map((row) => row.npi).sort(), [NPIS[0], NPIS[1], NPIS[2]].sort(), 'nothing written for a refused call');
      const document = (await (await fetch(`${t.url}/openapi.json`)).json()) as {
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      };
      assert.ok(document.paths['/v1/providers/register']?.['post']?.responses['429'], 'the OpenAPI document lists the 429');
    } finally {
      await t.stop();
    }
  });

  test('from a peer that is not trusted (the default), X-Forwarded-For does not buy another allowance', async () => {
    const t = await startApiNeuron({ config: { api: { register_limit_per_minute: 1 } } });
    try {
      const from = (client: string, npi: string) =>
        t.request('POST', '/v1/providers/register', { body: registration(npi), headers: { 'x-forwarded-for': client } });
      assert.equal((await from(CLIENT_A, NPIS[0]!)).status, 201);
      assert.equal((await from(CLIENT_B, NPIS[1]!)).status, 429);
      assert.equal((await auditEntries(t.neuron, 'provider.register_limited'))[0]!.details['client_ip'], '127.0.0.1');
    } finally {
      await t.stop();
    }
  });
});
