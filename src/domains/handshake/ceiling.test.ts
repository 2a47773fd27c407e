/**
 * Admission, deadlines and shutdown through real sockets: the ceiling holds under a crowd, the
 * queue answers 503 with Retry-After on timeout and when full, clients that stall or leave free
 * their place, other paths and malformed upgrades get plain HTTP errors, and stopping the Neuron
 * closes open handshakes with 1001.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { HandshakeError } from 'neuron-careagent-client';
import { startNeuronWithProvider, startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { establishAs } from '../../../test/helpers/providers.ts';
import { auditEntries, eventually, writtenFor } from '../../../test/helpers/records.ts';
import {
  authenticate,
  challengeResponse,
  newPatient,
  openRaw,
  pendingUpgrade,
  rawUpgrade,
  upgradeHeaders,
  type Patient,
} from '../../../test/helpers/raw-handshake.ts';

const PROVIDER = '1679576722';

function neuronWith(handshake: Record<string, number>): Promise<TestNeuron> {
  return startNeuronWithProvider({ npi: PROVIDER }, { config: { handshake } });
}

function establish(t: TestNeuron, patient: Patient, timeoutMs?: number) {
  return establishAs(t.handshakeUrl, patient, PROVIDER, timeoutMs ? { timeoutMs } : {});
}

describe('the ceiling', () => {
  test('ceiling 2: 50 simultaneous patients all complete and never more than 2 are in progress', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 2 });
    try {
      let peakActive = 0;
      let peakSlots = 0;
      let peakQueued = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peakActive = Math.max(peakActive, t.neuron.handshake.activeSessions().filter((s) => s.status === 'active').length);
          const load = t.neuron.handshake.load();
          peakSlots = Math.max(peakSlots, load.active);
          peakQueued = Math.max(peakQueued, load.queued);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const patients = Array.from({ length: 50 }, (_, i) => newPatient(`crowd-${i}`));
      const results = await Promise.all(patients.map((p) => establish(t, p)));
      sampling = false;
      await sampler;
      assert.equal(results.filter((r) => r.status === 'new').length, 50);
      assert.ok(peakActive <= 2, `at most 2 sessions in progress, saw ${peakActive}`);
      assert.ok(peakSlots <= 2, `at most 2 slots taken, saw ${peakSlots}`);
      assert.ok(peakQueued > 0, 'some upgrades waited in the queue');
      const metrics = await t.neuron.metrics.getSingleMetricAsString('neuron_handshakes_total');
      assert.match(metrics, /outcome="new"[^\n]* 50/);
      const wait = await t.neuron.metrics.getSingleMetricAsString('neuron_handshake_queue_wait_seconds');
      assert.match(wait, /neuron_handshake_queue_wait_seconds_count(?:\{[^}]*\})? 50/);
    } finally {
      await t.stop();
    }
  });

  test('a queued upgrade that waits past queue_timeout_ms gets 503 with Retry-After before any WebSocket', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1, queue_timeout_ms: 200, retry_after_seconds: 7 });
    try {
      const holder = await openRaw(t.handshakeUrl); // holds the only slot (auth timeout is 10 s)
      const answer = await rawUpgrade(t.port, '/ws/handshake', upgradeHeaders(t.port));
      assert.equal(answer.status, 503);
      assert.equal(answer.headers['retry-after'], '7');
      assert.match(String(answer.headers['content-type']), /application\/problem\+json/);
      assert.equal(JSON.parse(answer.body).code, 'HANDSHAKE_QUEUE_TIMEOUT');

      // The client library surfaces it with the status and Retry-After.
      const error = await establish(t, newPatient('queued-client')).then(
        () => null,
        (e: HandshakeError) => e,
      );
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, 'HANDSHAKE_QUEUE_TIMEOUT');
      assert.equal(error.status, 503);
      assert.equal(error.retryAfter, 7);
      holder.ws.close();
      await holder.closed;
      assert.match(await t.neuron.metrics.getSingleMetricAsString('neuron_handshakes_total'), /outcome="HANDSHAKE_QUEUE_TIMEOUT"[^\n]* 2/);
    } finally {
      await t.stop();
    }
  });

  test('an upgrade arriving with the queue full gets 503 at once', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1, max_queued: 1, retry_after_seconds: 3 });
    try {
      const holder = await openRaw(t.handshakeUrl);
      const queued = pendingUpgrade(t.port);
      await eventually(() => t.neuron.handshake.load().queued === 1);
      const answer = await rawUpgrade(t.port, '/ws/handshake', upgradeHeaders(t.port));
      assert.equal(answer.status, 503);
      assert.equal(answer.headers['retry-after'], '3');
      assert.equal(JSON.parse(answer.body).code, 'HANDSHAKE_QUEUE_FULL');
      // When the slot frees, the queued one is admitted (101).
      holder.ws.close();
      await eventually(() => t.neuron.handshake.load().queued === 0);
      await eventually(() => t.neuron.handshake.activeSessions().length === 1);
      queued.socket.destroy();
      assert.match(await queued.answer, /^HTTP\/1\.1 101/);
    } finally {
      await t.stop();
    }
  });

  test('a client that disconnects while queued leaves the queue at once', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1 });
    try {
      const holder = await openRaw(t.handshakeUrl);
      const waiting = Array.from({ length: 5 }, () => pendingUpgrade(t.port));
      await eventually(() => t.neuron.handshake.load().queued === 5);
      waiting[2]!.socket.end(); // a clean FIN
      waiting[4]!.socket.destroy(); // a reset
      await eventually(() => t.neuron.handshake.load().queued === 3);
      for (const w of waiting) w.socket.destroy();
      await eventually(() => t.neuron.handshake.load().queued === 0);
      holder.ws.close();
      await holder.closed;
      // Nobody left waiting holds a slot: a new patient goes straight through.
      assert.equal((await establish(t, newPatient('after-leavers'))).status, 'new');
      assert.equal(t.neuron.handshake.load().active, 0);
    } finally {
      await t.stop();
    }
  });
});

describe('deadlines', () => {
  test('a peer that never answers our close frame is cut off after close_grace_ms, and its slot frees', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1, auth_timeout_ms: 100, close_grace_ms: 100 });
    try {
      // Raw TCP: a WebSocket library would answer the close frame; this client never sends a byte after the upgrade.
      const { answer } = pendingUpgrade(t.port);
      // Far beyond the 100 ms grace, far below ws's own 30 s default: the configured grace applies.
      const notCut = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('not cut off')), 10_000).unref());
      const text = await Promise.race([answer, notCut]);
      assert.match(text, /^HTTP\/1\.1 101 /);
      assert.match(text, /AUTH_TIMEOUT/);
      // Only ws's close timer ends a connection whose peer never sent a close frame; the slot is free again.
      assert.equal((await establish(t, newPatient('after-silent-close'))).status, 'new');
    } finally {
      await t.stop();
    }
  });

  test('AUTH_TIMEOUT when no handshake.auth arrives, and the slot goes to the next in line', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1, auth_timeout_ms: 200 });
    try {
      const stalled = await openRaw(t.handshakeUrl);
      const next = establish(t, newPatient('after-stall-1'));
      const frame = await stalled.next();
      assert.deepEqual({ type: frame.type, code: frame.code }, { type: 'handshake.error', code: 'AUTH_TIMEOUT' });
      assert.equal((await stalled.closed).code, 4001);
      assert.equal((await next).status, 'new');
      await eventually(async () => (await auditEntries(t.neuron, 'handshake.failed')).some((e) => e.details.code === 'AUTH_TIMEOUT'));
    } finally {
      await t.stop();
    }
  });

  test('AUTH_TIMEOUT when the challenge is not answered in time; nothing is written and the slot frees', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1, challenge_timeout_ms: 200 });
    try {
      const patient = newPatient('slow-responder');
      const stalled = await openRaw(t.handshakeUrl);
      const challenge = await authenticate(stalled, patient, PROVIDER);
      const next = establish(t, newPatient('after-stall-2'));
      const frame = await stalled.next();
      assert.equal(frame.code, 'AUTH_TIMEOUT');
      assert.equal((await stalled.closed).code, 4001);
      assert.equal((await next).status, 'new');
      // A late answer to the expired challenge cannot complete anything.
      assert.ok(challenge.nonce);
      assert.deepEqual(await writtenFor(t.neuron, patient.agentId), { relationships: 0, patients: 0, outbox: 0 });
    } finally {
      await t.stop();
    }
  });

  test('a client that goes away mid-handshake frees its slot', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1 });
    try {
      const patient = newPatient('leaver');
      const raw = await openRaw(t.handshakeUrl);
      await authenticate(raw, patient, PROVIDER);
      raw.ws.terminate();
      assert.equal((await establish(t, newPatient('after-leaver'))).status, 'new');
      assert.deepEqual(await writtenFor(t.neuron, patient.agentId), { relationships: 0, patients: 0, outbox: 0 });
    } finally {
      await t.stop();
    }
  });
});

describe('upgrade requests', () => {
  test('another upgrade path is 404 and the socket is closed', async () => {
    const t = await neuronWith({});
    try {
      for (const path of ['/ws/other', '/ws/handshake/extra', '/']) {
        const answer = await rawUpgrade(t.port, path, upgradeHeaders(t.port));
        assert.equal(answer.status, 404, path);
        assert.equal(JSON.parse(answer.body).code, 'ROUTE_NOT_FOUND');
      }
      const ok = await rawUpgrade(t.port, '/ws/handshake?grant=1', upgradeHeaders(t.port));
      assert.equal(ok.status, 101, 'a query string does not change the path');
    } finally {
      await t.stop();
    }
  });

  test('malformed upgrades get an HTTP error and the Neuron keeps serving', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 1 });
    try {
      const good = upgradeHeaders(t.port);
      const cases: Array<[string, Record<string, string>, string?]> = [
        ['bad key', { ...good, 'sec-websocket-key': 'not-a-key' }],
        ['no key', Object.fromEntries(Object.entries(good).filter(([k]) => k !== 'sec-websocket-key'))],
        ['wrong version', { ...good, 'sec-websocket-version': '12' }],
        ['not websocket', { ...good, upgrade: 'h2c' }],
        ['POST', good, 'POST'],
      ];
      for (const [label, headers, method] of cases) {
        const answer = await rawUpgrade(t.port, '/ws/handshake', headers, method);
        assert.ok(answer.status >= 400 && answer.status < 500, `${label}: ${answer.status}`);
      }
      // Bad Host headers and garbage, straight on a socket.
      const upgradeLines =
        'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
      const requests: Array<[string, RegExp]> = [
        [`GET /ws/handshake HTTP/1.1\r\n${upgradeLines}\r\n`, /^HTTP\/1\.1 400/], // no Host
        [`GET /ws/handshake HTTP/1.1\r\nHost: a b c\r\n${upgradeLines}\r\n`, /^HTTP\/1\.1 400/],
        [`GET /ws/handshake HTTP/1.1\r\nHost: one\r\nHost: two\r\n${upgradeLines}\r\n`, /^HTTP\/1\.1 400/],
        // Accepted, then a frame that is not WebSocket framing: ws closes with a protocol error.
        [`GET /ws/handshake HTTP/1.1\r\nHost: x\r\n${upgradeLines}\r\n\x00\xff\x00garbage`, /^HTTP\/1\.1 101/],
        ['\x16\x03\x01 not http at all\r\n\r\n', /^HTTP\/1\.1 400/],
      ];
      for (const [request, expected] of requests) {
        const socket = connect(t.port, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write(request, 'latin1');
        const answer = await new Promise<string>((resolve) => {
          let text = '';
          socket.on('data', (c) => {
            text += c.toString('latin1');
          });
          socket.on('close', () => resolve(text));
          setTimeout(() => socket.destroy(), 1_000);
        });
        assert.match(answer, expected);
      }
      // A reset right after the upgrade request, while the slot is taken so it sits in the queue.
      const holder = await openRaw(t.handshakeUrl);
      const queued = pendingUpgrade(t.port);
      await eventually(() => t.neuron.handshake.load().queued === 1);
      queued.socket.resetAndDestroy();
      await eventually(() => t.neuron.handshake.load().queued === 0);
      holder.ws.close();
      await holder.closed;
      assert.equal((await establish(t, newPatient('still-serving'))).status, 'new');
      assert.equal(t.neuron.handshake.load().active, 0);
    } finally {
      await t.stop();
    }
  });
});

describe('shutdown', () => {
  test('stopping the Neuron closes open handshakes with 1001, answers queued upgrades 503 and writes no half record', async () => {
    const t = await neuronWith({ max_concurrent_handshakes: 2 });
    const stalledBeforeAuth = await openRaw(t.handshakeUrl);
    const patient = newPatient('shutdown-mid');
    const challenged = await openRaw(t.handshakeUrl);
    const challenge = await authenticate(challenged, patient, PROVIDER);
    const queued = pendingUpgrade(t.port);
    await eventually(() => t.neuron.handshake.load().queued === 1);
    const dataDir = t.dataDir;
    const stopping = t.stop({ keepData: true });
    const [a, b] = await Promise.all([stalledBeforeAuth.closed, challenged.closed]);
    assert.equal(a.code, 1001);
    assert.equal(b.code, 1001);
    assert.equal(stalledBeforeAuth.frames.length, 0);
    assert.equal(challenged.frames.length, 1, 'only the challenge, no error frame');
    assert.match(await queued.answer, /^HTTP\/1\.1 503[\s\S]*retry-after: 5/i);
    await stopping;
    assert.ok(challenge.nonce);

    // Nothing for the interrupted patient on disk.
    const again = await startTestNeuron({ dataDir });
    try {
      assert.deepEqual(await writtenFor(again.neuron, patient.agentId), { relationships: 0, patients: 0, outbox: 0 });
    } finally {
      await again.stop();
    }
  });

  test('`existing` after a restart on the same data directory', async () => {
    const first = await neuronWith({});
    const patient = newPatient('restart');
    const created = await establish(first, patient);
    assert.equal(created.status, 'new');
    await first.stop({ keepData: true });
    const second = await startTestNeuron({ dataDir: first.dataDir });
    try {
      const again = await establish(second, patient);
      assert.equal(again.status, 'existing');
      assert.equal(again.relationshipId, created.relationshipId);
      assert.equal(again.neuronPublicKey, created.neuronPublicKey, 'the organization key survives the restart');
    } finally {
      await second.stop();
    }
  });

  test('a response that arrives as the Neuron stops is either committed whole or not at all', async () => {
    const t = await neuronWith({});
    const patient = newPatient('shutdown-race');
    const raw = await openRaw(t.handshakeUrl);
    const challenge = await authenticate(raw, patient, PROVIDER);
    raw.send(challengeResponse(patient, challenge.nonce as string));
    const stopping = t.stop({ keepData: true });
    const closed = await raw.closed;
    await stopping;
    const again = await startTestNeuron({ dataDir: t.dataDir });
    try {
      const written = await writtenFor(again.neuron, patient.agentId);
      if (closed.code === 1000) assert.deepEqual(written, { relationships: 1, patients: 1, outbox: 1 });
      else {
        assert.equal(closed.code, 1001);
        assert.deepEqual(written, { relationships: 0, patients: 0, outbox: 0 });
      }
    } finally {
      await again.stop();
    }
  });
});
