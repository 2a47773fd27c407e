/**
 * REST API abuse against a real Neuron: guessing API keys (and provider credentials) is rate
 * limited per client address and audited; oversized and malformed bodies are refused with
 * problem documents; and no route tells a caller without the scope to read patients whether a
 * patient agent id exists (existing and absent ids get byte-identical answers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { generateApiKey, newKeyId, parseApiKey } from '../../src/domains/api-keys/format.ts';
import { insertBlock } from '../../src/domains/blocks/store.ts';
import { isoNow } from '../../src/foundation/storage/index.ts';
import { insertRelationship, startApiNeuron, type ApiTestNeuron } from '../helpers/api.ts';

const AUTH_FAILURE_LIMIT = 5;
const BODY_LIMIT = 2_048;

function assertProblem(response: { status: number; headers: Headers; body: any; text: string }, status: number, code: string): void {
  assert.equal(response.status, status, `expected ${status} ${code}, got ${response.status}: ${response.text}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(response.body?.code, code, response.text);
  assert.equal(response.body?.status, status);
}

describe('guessing credentials', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron({ config: { api: { auth_failure_limit_per_minute: AUTH_FAILURE_LIMIT, rate_limit_per_minute: 1_000 } } });
  });
  after(async () => t.stop());

  test(`after ${AUTH_FAILURE_LIMIT} failures from one address every credential it presents gets 429 + Retry-After, and the lockout is audited`, async () => {
    const realId = parseApiKey(t.keys.admin)!.id;
    // Every kind of wrong key answers alike: nothing tells a guesser which key ids exist.
    const guesses = [
      generateApiKey(newKeyId()).key, // well formed, unknown id
      generateApiKey(realId).key, // a real key id with a wrong secret
      `${t.keys.admin.slice(0, -1)}${t.keys.admin.endsWith('A') ? 'B' : 'A'}`, // bad checksum
      'nrn_not-a-key',
    ];
    const answers = [];
    // One X-Request-Id for all, so the answers can be compared whole (each would otherwise carry its own).
    for (const key of guesses)
      answers.push(await t.request('GET', '/v1/relationships', { key, headers: { 'x-request-id': 'guess-comparison' } }));
    for (const answer of answers) {
      assertProblem(answer, 401, 'UNAUTHENTICATED');
      assert.deepEqual(answer.body, answers[0]!.body, 'an unknown key id and a wrong secret are indistinguishable');
      assert.equal(answer.headers.get('www-authenticate'), answers[0]!.headers.get('www-authenticate'));
    }
    // A guessed provider credential on a provider route counts against the same address.
    const providerGuess = await t.request('POST', '/v1/consent/verify', {
      headers: { authorization: 'Bearer nprv_guessed_credential' },
      body: { patient_agent_id: 'did:example:x', action: 'office_visit' },
    });
    assertProblem(providerGuess, 401, 'UNAUTHENTICATED');

    for (const attempt of [generateApiKey(newKeyId()).key, t.keys.admin]) {
      const locked = await t.request('GET', '/v1/relationships', { key: attempt, keyHeader: 'x-api-key' });
      assertProblem(locked, 429, 'RATE_LIMITED');
      assert.ok(Number(locked.headers.get('retry-after')) >= 1, 'Retry-After in whole seconds');
    }
    // Routes without credentials are not part of the lockout.
    assert.equal((await fetch(`${t.url}/health/live`)).status, 200);

    const audit = await t.neuron.storage.db
      .selectFrom('audit_log')
      .select(['event_type', 'details'])
      .where('event_type', '=', 'api.auth_lockout')
      .execute();
    assert.equal(audit.length, 1, 'one lockout entry per address and minute, however long the guessing goes on');
    const details = JSON.parse(audit[0]!.details) as Record<string, unknown>;
    assert.equal(details['client_ip'], '127.0.0.1');
    assert.equal(details['failures_per_minute_limit'], AUTH_FAILURE_LIMIT);
    for (const secret of [...guesses, t.keys.admin, 'nprv_guessed_credential'])
      assert.ok(!audit[0]!.details.includes(secret), 'no presented credential in the audit log');
    const metrics = await t.neuron.metrics.getSingleMetricAsString('neuron_api_rate_limited_total');
    assert.match(metrics, /limit="auth_failures"[^\n]* 2\b/);
  });
});

describe('hostile bodies and requests', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron({ config: { server: { body_limit_bytes: BODY_LIMIT } } });
  });
  after(async () => t.stop());

  /** A request with exactly these bytes and headers (fetch would fix some of them up). */
  function raw(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Buffer | Buffer[],
  ): Promise<{ status: number; headers: Headers; body: any; text: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: Number(new URL(t.url).port), path, method, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          const h = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') h.set(name, value);
          resolve({ status: res.statusCode ?? 0, headers: h, body: parsed, text });
        });
      });
      req.on('error', reject);
      if (Array.isArray(body)) {
        for (const chunk of body) req.write(chunk);
        req.end();
      } else req.end(body);
    });
  }

  test('bodies over server.body_limit_bytes are refused with 413, declared or streamed, and a caller without a key never gets that far', async () => {
    const big = JSON.stringify({ patient_agent_id: 'did:example:big', reason: 'x'.repeat(BODY_LIMIT) });
    assertProblem(await t.request('POST', '/v1/blocks', { key: t.keys.admin, body: big }), 413, 'BODY_TOO_LARGE');
    const chunks = Array.from({ length: 8 }, () => Buffer.from('x'.repeat(512)));
    assertProblem(
      await raw(
        'POST',
        '/v1/blocks',
        { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunks,
      ),
      413,
      'BODY_TOO_LARGE',
    );
    // Authentication runs before the body is read.
    assertProblem(await t.request('POST', '/v1/blocks', { body: big }), 401, 'UNAUTHENTICATED');
  });

  test('malformed bodies and requests get a problem document and change nothing', async () => {
    const admin = { authorization: `Bearer ${t.keys.admin}` };
    const json = { ...admin, 'content-type': 'application/json' };
    // fastify's JSON parser refuses __proto__ and constructor.prototype keys outright (MALFORMED_JSON).
    const cases: Array<[string, () => Promise<{ status: number; headers: Headers; body: any; text: string }>, number, string | string[]]> =
      [
        ['not JSON', () => raw('POST', '/v1/blocks', json, Buffer.from('{"patient_agent_id": ')), 400, 'MALFORMED_JSON'],
        ['empty JSON body', () => raw('POST', '/v1/blocks', json, Buffer.alloc(0)), 400, 'MALFORMED_JSON'],
        [
          'invalid UTF-8',
          () =>
            raw(
              'POST',
              '/v1/blocks',
              json,
              Buffer.concat([Buffer.from('{"patient_agent_id":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","reason":"x"}')]),
            ),
          400,
          'VALIDATION_FAILED',
        ],
        [
          'a JSON array',
          () => raw('POST', '/v1/blocks', json, Buffer.from('[{"patient_agent_id":"did:example:a","reason":"x"}]')),
          400,
          'VALIDATION_FAILED',
        ],
        [
          'deep nesting',
          () => raw('POST', '/v1/blocks', json, Buffer.from(`{"patient_agent_id":${'['.repeat(900)}${']'.repeat(900)},"reason":"x"}`)),
          400,
          'VALIDATION_FAILED',
        ],
        [
          '__proto__ key',
          () =>
            raw('POST', '/v1/blocks', json, Buffer.from('{"patient_agent_id":"did:example:p","reason":"x","__proto__":{"polluted":true}}')),
          400,
          ['MALFORMED_JSON', 'VALIDATION_FAILED'],
        ],
        [
          'constructor.prototype',
          () =>
            raw(
              'POST',
              '/v1/blocks',
              json,
              Buffer.from('{"patient_agent_id":"did:example:p","reason":"x","constructor":{"prototype":{"polluted":true}}}'),
            ),
          400,
          ['MALFORMED_JSON', 'VALIDATION_FAILED'],
        ],
        ['wrong type', () => raw('POST', '/v1/blocks', json, Buffer.from('{"patient_agent_id":7,"reason":"x"}')), 400, 'VALIDATION_FAILED'],
        [
          'control characters',
          () => raw('POST', '/v1/blocks', json, Buffer.from('{"patient_agent_id":"did:example:\\u0000","reason":"x"}')),
          400,
          'VALIDATION_FAILED',
        ],
        [
          'application/xml',
          () => raw('POST', '/v1/blocks', { ...admin, 'content-type': 'application/xml' }, Buffer.from('<block/>')),
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        ],
        // fastify reads text/plain as a string, which the body schema then refuses.
        [
          'text/plain',
          () => raw('POST', '/v1/blocks', { ...admin, 'content-type': 'text/plain' }, Buffer.from('hello')),
          400,
          'VALIDATION_FAILED',
        ],
        ['unknown query parameter', () => raw('GET', '/v1/relationships?limit=1&drop_table=1', admin), 400, 'VALIDATION_FAILED'],
        ['limit out of range', () => raw('GET', '/v1/relationships?limit=100000', admin), 400, 'VALIDATION_FAILED'],
        ['forged cursor', () => raw('GET', '/v1/relationships?after=AAAA', admin), 400, 'INVALID_CURSOR'],
        // An agent id is an opaque string: a traversal is just an id nobody has.
        ['path traversal', () => raw('GET', '/v1/patients/..%2f..%2fetc%2fpasswd', admin), 404, 'NOT_FOUND'],
        ['NUL in a path parameter', () => raw('GET', '/v1/patients/did%3Aexample%3A%00', admin), 400, 'VALIDATION_FAILED'],
        ['an id over 256 characters', () => raw('GET', `/v1/patients/${'x'.repeat(257)}`, admin), 400, 'VALIDATION_FAILED'],
        ['a malformed percent-encoding', () => raw('GET', '/v1/patients/did%3Aexample%zz', admin), 400, 'VALIDATION_FAILED'],
      ];
    for (const [label, answer, status, code] of cases) {
      const response = await answer();
      assert.equal(response.status, status, `${label}: ${response.text}`);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/, label);
      assert.ok((Array.isArray(code) ? code : [code]).includes(response.body?.code), `${label}: ${response.text}`);
      assert.ok(!response.text.includes('polluted'), `${label}: the answer does not echo the input`);
    }
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'no prototype was touched');
    // The longest agent id the protocol allows is addressable (percent-encoded or not).
    const longest = `did:example:${'x'.repeat(256 - 12)}`;
    await insertRelationship(t.neuron, { patientAgentId: longest });
    assert.equal((await raw('GET', `/v1/patients/${encodeURIComponent(longest)}`, admin)).status, 200);
    assert.equal((await raw('GET', `/v1/patients/${longest}`, admin)).status, 200);
    assert.equal((await t.neuron.storage.db.selectFrom('blocks').select('patient_agent_id').execute()).length, 0, 'nothing was written');
    assert.equal((await fetch(`${t.url}/health/live`)).status, 200);
    await t.checkConformance();
  });
});

describe('patient existence', () => {
  let t: ApiTestNeuron;
  // Same length, so that nothing but existence could make the answers differ.
  const PRESENT = 'did:example:patient-present-0001';
  const ABSENT = 'did:example:patient-absent--0001';

  before(async () => {
    t = await startApiNeuron();
    await insertRelationship(t.neuron, { patientAgentId: PRESENT, profile: { display_name: 'Synthetic Person' } });
    await insertBlock(t.neuron.storage.db, { patientAgentId: PRESENT, reason: 'synthetic', blockedBy: 'cli', createdAt: isoNow() });
  });
  after(async () => t.stop());

  type Probe = {
    method: string;
    path: (id: string) => string;
    body?: (id: string) => unknown;
    scope: 'read' | 'write' | 'admin' | 'provider';
  };
  const probes: Probe[] = [
    { method: 'GET', path: (id) => `/v1/patients/${encodeURIComponent(id)}`, scope: 'read' },
    {
      method: 'PATCH',
      path: (id) => `/v1/patients/${encodeURIComponent(id)}/profile`,
      body: () => ({ display_name: 'Changed' }),
      scope: 'write',
    },
    { method: 'DELETE', path: (id) => `/v1/patients/${encodeURIComponent(id)}/profile`, scope: 'write' },
    { method: 'GET', path: (id) => `/v1/patients?search=${encodeURIComponent(id)}`, scope: 'read' },
    { method: 'GET', path: (id) => `/v1/relationships?patient_agent_id=${encodeURIComponent(id)}`, scope: 'read' },
    { method: 'POST', path: () => '/v1/blocks', body: (id) => ({ patient_agent_id: id, reason: 'probe' }), scope: 'write' },
    { method: 'DELETE', path: (id) => `/v1/blocks/${encodeURIComponent(id)}`, scope: 'write' },
    {
      method: 'POST',
      path: () => '/v1/consent/verify',
      body: (id) => ({ patient_agent_id: id, action: 'appointments.read' }),
      scope: 'provider',
    },
  ];

  test('without the scope to read patients, existing and absent agent ids get identical answers on every route that takes one', async () => {
    const wrongScopes: Record<Probe['scope'], Array<'read' | 'write' | 'admin'>> = {
      read: [],
      write: ['read'],
      admin: ['read', 'write'],
      provider: ['read', 'admin'],
    };
    const garbageKey = generateApiKey(newKeyId()).key;
    let compared = 0;
    for (const probe of probes) {
      const credentials: Array<[string, string | null]> = [
        ['no credential', null],
        ['an invalid key', garbageKey],
        ...wrongScopes[probe.scope].map((s): [string, string] => [`a ${s} key`, t.keys[s]]),
      ];
      for (const [label, key] of credentials) {
        // The same X-Request-Id for both, so the answers can be compared byte for byte.
        const answer = async (id: string) =>
          t.request(probe.method, probe.path(id), {
            key,
            headers: { 'x-request-id': 'existence-comparison' },
            ...(probe.body ? { body: probe.body(id) } : {}),
          });
        const present = await answer(PRESENT);
        const absent = await answer(ABSENT);
        const where = `${probe.method} ${probe.path('<id>')} with ${label}`;
        assert.ok(present.status === 401 || present.status === 403, `${where}: refused (${present.status})`);
        assert.equal(present.status, absent.status, where);
        assert.equal(
          present.text.split(encodeURIComponent(PRESENT)).join('<id>').split(PRESENT).join('<id>'),
          absent.text.split(encodeURIComponent(ABSENT)).join('<id>').split(ABSENT).join('<id>'),
          where,
        );
        for (const header of ['content-type', 'www-authenticate', 'content-length'])
          assert.equal(present.headers.get(header), absent.headers.get(header), `${where}: ${header}`);
        compared += 1;
      }
    }
    assert.ok(compared >= 20);
    // With the scope, the difference is there to see: the comparison above is not vacuous.
    assert.equal((await t.request('GET', `/v1/patients/${encodeURIComponent(PRESENT)}`, { key: t.keys.read })).status, 200);
    assert.equal((await t.request('GET', `/v1/patients/${encodeURIComponent(ABSENT)}`, { key: t.keys.read })).status, 404);
    // Nothing changed on the way.
    const entry = await t.neuron.storage.db
      .selectFrom('patients')
      .select('profile')
      .where('patient_agent_id', '=', PRESENT)
      .executeTakeFirstOrThrow();
    assert.match(entry.profile ?? '', /Synthetic Person/);
    assert.equal((await t.neuron.storage.db.selectFrom('blocks').select('patient_agent_id').execute()).length, 1);
  });
});
