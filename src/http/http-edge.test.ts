/**
 * The HTTP edge, whatever the route: unknown methods, non-finite query numbers, a fixed path
 * beside a parameter route, slow and aborted requests, request ids, and what the request log line
 * carries (route pattern and query keys, never query values). A real Neuron on 127.0.0.1 whose log
 * is captured at debug level.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { startTestNeuron, type TestNeuron } from '../../test/helpers/neuron.ts';
import { ApiKeyService } from '../domains/api-keys/service.ts';

/** Small, so the slow-client tests end quickly; the schema's minimum. */
const REQUEST_TIMEOUT_MS = 1_000;
/** Generous upper bound for "cut at its deadline" on a loaded machine (a hang fails the test). */
const LATE_MS = 15_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let t: TestNeuron;
let adminKey: string;
const logLines: Array<Record<string, unknown> & { level: number; msg: string }> = [];
const rawLog: string[] = [];

before(async () => {
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of String(chunk).split('\n').filter(Boolean)) {
      rawLog.push(line);
      logLines.push(JSON.parse(line));
    }
  });
  t = await startTestNeuron({
    config: { server: { request_timeout_ms: REQUEST_TIMEOUT_MS }, api: { rate_limit_per_minute: 100_000 } },
    neuronOptions: { logger: pino({ level: 'debug' }, stream) },
  });
  const apiKeys = new ApiKeyService({ storage: t.neuron.storage, audit: t.neuron.audit });
  adminKey = (await apiKeys.create({ label: 'edge-admin', scopes: ['admin'], expiresAt: null, actor: 'cli' })).key;
});
after(async () => t.stop());

const auth = (): Record<string, string> => ({ authorization: `Bearer ${adminKey}` });

/** Log lines written while `action` ran (and a moment after, for lines written on close). */
async function logDuring(action: () => Promise<void>): Promise<typeof logLines> {
  const from = logLines.length;
  await action();
  await new Promise((resolve) => setTimeout(resolve, 100));
  return logLines.slice(from);
}

/** Writes `head` on a raw socket, then keeps trickling `drip` until the server answers and closes. */
function trickle(head: string, drip: string): Promise<{ answer: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(t.port, '127.0.0.1', () => socket.write(head));
    const interval = setInterval(() => socket.writable && socket.write(drip), 100);
    const guard = setTimeout(() => finish(false), LATE_MS);
    const finish = (closed: boolean): void => {
      clearInterval(interval);
      clearTimeout(guard);
      socket.destroy();
      resolve({ answer, closed });
    };
    socket.on('data', (data) => (answer += String(data)));
    socket.on('close', () => finish(true));
    socket.on('error', reject);
  });
}

describe('HTTP edge', () => {
  test('an unknown method on a known path is 405 with Allow (QUERY without Content-Type too), logged without a stack', async () => {
    const lines = await logDuring(async () => {
      for (const headers of [{}, { 'content-type': 'application/json' }] as Array<Record<string, string>>) {
        const response = await fetch(`${t.url}/health/live`, { method: 'QUERY', headers });
        const problem = (await response.json()) as Record<string, unknown>;
        assert.equal(response.status, 405);
        assert.equal(response.headers.get('allow'), 'GET, HEAD');
        assert.equal(problem['code'], 'METHOD_NOT_ALLOWED');
      }
      const unknownPath = await fetch(`${t.url}/no/such/path`, { method: 'QUERY' });
      assert.equal(unknownPath.status, 404);
      assert.equal(((await unknownPath.json()) as Record<string, unknown>)['code'], 'ROUTE_NOT_FOUND');
    });
    assert.deepEqual(
      lines.filter((line) => line.level >= 50),
      [],
    );
    assert.ok(!lines.some((line) => JSON.stringify(line).includes('stack')));
  });

  test('?limit=Infinity and ?limit=1e309 are refused with VALIDATION_FAILED on every list route', async () => {
    const document = (await (await fetch(`${t.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
    };
    const listRoutes = Object.entries(document.paths)
      .filter(([, operations]) => operations['get']?.parameters?.some((p) => p.in === 'query' && p.name === 'limit'))
      .map(([path]) => path);
    assert.ok(listRoutes.length >= 7, `list routes found: ${listRoutes.join(', ')}`);
    for (const route of listRoutes) {
      for (const limit of ['Infinity', '1e309', '-Infinity']) {
        // Path parameters get valid values, so only the limit can be wrong.
        const path = route.replace('{npi}', '1679576722').replace(/\{[^}]+\}/g, 'synthetic-1');
        const response = await fetch(`${t.url}${path}?limit=${limit}`, { headers: auth() });
        const problem = (await response.json()) as Record<string, unknown>;
        assert.equal(response.status, 400, `${route}?limit=${limit}: ${JSON.stringify(problem)}`);
        assert.equal(problem['code'], 'VALIDATION_FAILED');
        assert.deepEqual(problem['errors'], [{ path: 'querystring.limit', message: 'must be a finite number' }]);
      }
    }
  });

  test('PATCH /v1/providers/register is 405 (the fixed path is not the :npi route), before authentication', async () => {
    for (const headers of [{}, auth()]) {
      const response = await fetch(`${t.url}/v1/providers/register`, {
        method: 'PATCH',
        headers: { ...headers, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get('allow'), 'POST');
      assert.equal(((await response.json()) as Record<string, unknown>)['code'], 'METHOD_NOT_ALLOWED');
    }
  });

  test('headers or a body trickled past server.request_timeout_ms are cut with 408', async () => {
    const slowHeaders = await trickle('GET /health/live HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n');
    assert.ok(slowHeaders.closed, 'slow headers were not cut');
    assert.match(slowHeaders.answer, /^HTTP\/1\.1 408 /);
    const slowBody = await trickle(
      `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${adminKey}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
      ' ',
    );
    assert.ok(slowBody.closed, 'a slow body was not cut');
    assert.match(slowBody.answer, /^HTTP\/1\.1 408 /);
  });

  test('a client aborting mid-body writes no error-level log line', async () => {
    const lines = await logDuring(async () => {
      await new Promise<void>((resolve) => {
        const socket = connect(t.port, '127.0.0.1', () => {
          socket.write(
            `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${adminKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"url":`,
          );
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 200);
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    assert.deepEqual(
      lines.filter((line) => line.level >= 50),
      [],
    );
  });

  test('the request log line has the route pattern and the query keys, never query values or a path secret', async () => {
    const secretSegment = 'reg_0123456789abcdefSECRET';
    const lines = await logDuring(async () => {
      await fetch(`${t.url}/v1/patients?search=Jane%20Syntheticperson%201970-01-01&api_key=nrn_x_synthetic&limit=5`, { headers: auth() });
      await fetch(`${t.url}/v1/providers/${secretSegment}/heartbeat`);
    });
    const text = JSON.stringify(lines);
    for (const value of ['Syntheticperson', '1970-01-01', 'nrn_x_synthetic', secretSegment])
      assert.ok(!text.includes(value), `log carries ${value}`);
    const completed = lines.filter((line) => line.msg === 'request completed');
    assert.deepEqual(
      completed.map((line) => [line['route'], line['query_keys']]),
      [
        ['/v1/patients', ['search', 'api_key', 'limit']],
        ['/v1/providers/:registration_id/heartbeat', []],
      ],
    );
    assert.ok(!lines.some((line) => line.msg === 'incoming request'));
  });

  test('X-Request-Id: a plain one is honoured, anything else replaced by a UUID; in the header, the problem and the log', async () => {
    const cases: Array<[string | undefined, (id: string) => boolean]> = [
      ['trace-01.ABC:xyz_9', (id) => id === 'trace-01.ABC:xyz_9'],
      [undefined, (id) => UUID.test(id)],
      ['a'.repeat(129), (id) => UUID.test(id)],
      ['bad id<script>', (id) => UUID.test(id)],
    ];
    const seen = new Set<string>();
    for (const [offered, expected] of cases) {
      const lines = await logDuring(async () => {
        const response = await fetch(`${t.url}/v1/no-such-route`, { headers: offered === undefined ? {} : { 'x-request-id': offered } });
        const id = response.headers.get('x-request-id') ?? '';
        assert.ok(expected(id), `offered ${offered}, got ${id}`);
        assert.equal(((await response.json()) as Record<string, unknown>)['request_id'], id);
        seen.add(id);
      });
      const completed = lines.find((line) => line.msg === 'request completed');
      assert.ok(completed && seen.has(completed['request_id'] as string));
    }
    assert.equal(seen.size, cases.length, 'generated ids are unique');
    const ok = await fetch(`${t.url}/health/live`);
    assert.match(ok.headers.get('x-request-id') ?? '', UUID);
  });

  test('a request refused before routing (not HTTP) still gets a request id in its header and problem', async () => {
    const { answer } = await trickle('NOT-A-METHOD / HTTP/1.1\r\nHost: x\r\n\r\n', '');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    const id = /x-request-id: ([^\r]+)/i.exec(answer)?.[1] ?? '';
    assert.match(id, UUID);
    assert.ok(answer.includes(`"request_id":"${id}"`));
  });
});

test('a refused WebSocket upgrade carries a request id in its header and problem too', async () => {
  // A plain GET on the handshake path (no Upgrade header) is refused by the broker, outside fastify.
  const { answer } = await trickle(`GET /ws/handshake HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`, '');
  assert.match(answer, /^HTTP\/1\.1 4\d\d /);
  const id = /x-request-id: ([^\r]+)/i.exec(answer)?.[1] ?? '';
  assert.match(id, UUID);
  assert.ok(answer.includes(`"request_id":"${id}"`));
});
