/**
 * Slow and idle clients: connections that never send, that stop after the challenge, that send
 * half a frame, or that never finish their upgrade headers. Each is closed at its deadline (small
 * configured deadlines, generous margins), holds no slot beyond it, writes nothing but its
 * failure audit, and legitimate patients keep completing meanwhile. Behaviour only: the stress run
 * (`npm run stress`) measures memory and timing with thousands of them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { startNeuronWithProvider, type TestNeuron } from '../helpers/neuron.ts';
import { establishAs } from '../helpers/providers.ts';
import { auditEntries, eventually } from '../helpers/records.ts';
import { authMessage, newPatient, type Patient } from '../helpers/raw-handshake.ts';
import { FrameReader, wsFrame } from './fuzz.ts';

const PROVIDER = '1679576722';
const CEILING = 50;
const AUTH_TIMEOUT_MS = 300;
const CHALLENGE_TIMEOUT_MS = 300;
const REQUEST_TIMEOUT_MS = 1_000;
/**
 * Clock tolerance for "not closed before its deadline". The deadline starts at admission, which is
 * after the client sent its upgrade, so client-side times measured from the request are a safe
 * lower bound; libuv timers work in whole milliseconds.
 */
const EARLY_MS = 5;
/** Generous upper bound for "closed at its deadline" on a loaded machine. */
const LATE_MS = 15_000;

let t: TestNeuron;
let run = 0;

before(async () => {
  t = await startNeuronWithProvider(
    { npi: PROVIDER },
    {
      config: {
        // Every client here shares 127.0.0.1; this suite is about deadlines, so the per-address cap
        // (covered by client-limits.test.ts) is raised above the 205 connections it opens at once.
        handshake: {
          max_concurrent_handshakes: CEILING,
          auth_timeout_ms: AUTH_TIMEOUT_MS,
          challenge_timeout_ms: CHALLENGE_TIMEOUT_MS,
          max_pending_per_address: 1_000,
        },
        server: { request_timeout_ms: REQUEST_TIMEOUT_MS },
      },
    },
  );
});
after(async () => t.stop());

interface IdleResult {
  frames: Array<Record<string, unknown>>;
  closeCode: number;
  /** When the upgrade request went out (before admission, so before the deadline started). */
  requestedAt: number;
  openedAt: number;
  challengedAt: number | null;
  closedAt: number;
}

/** A client that opens the handshake and then stays silent (or answers nothing after the challenge). */
function idleClient(patient: Patient | null): Promise<IdleResult> {
  return new Promise((resolve, reject) => {
    const requestedAt = performance.now();
    const ws = new WebSocket(t.handshakeUrl, { perMessageDeflate: false });
    const frames: Array<Record<string, unknown>> = [];
    let openedAt = 0;
    let challengedAt: number | null = null;
    ws.on('open', () => {
      openedAt = performance.now();
      if (patient) ws.send(JSON.stringify(authMessage(patient, PROVIDER)));
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      if (frame['type'] === 'handshake.challenge') challengedAt = performance.now();
      frames.push(frame);
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('error', (error) => {
      if (openedAt === 0) reject(error);
    });
    ws.on('close', (closeCode) => resolve({ frames, closeCode, requestedAt, openedAt, challengedAt, closedAt: performance.now() }));
  });
}

function legit(patient: Patient) {
  return establishAs(t.handshakeUrl, patient, PROVIDER, { timeoutMs: 60_000 });
}

function assertTimedOut(result: IdleResult, label: string): void {
  const errors = result.frames.filter((f) => f['type'] === 'handshake.error');
  assert.equal(errors.length, 1, `${label}: one error frame, got ${JSON.stringify(result.frames)}`);
  assert.equal(errors[0]!['code'], 'AUTH_TIMEOUT', label);
  assert.equal(result.closeCode, 4001, label);
}

async function failureCount(code: string): Promise<number> {
  return (await auditEntries(t.neuron, 'handshake.failed')).filter((e) => e.details['code'] === code).length;
}

describe('idle clients', () => {
  test(`200 idle connections at ceiling ${CEILING}: each closed with AUTH_TIMEOUT at its deadline while legitimate patients complete`, async () => {
    run += 1;
    const timeoutsBefore = await failureCount('AUTH_TIMEOUT');
    const relationshipsBefore = (await t.neuron.storage.db.selectFrom('relationships').select('id').execute()).length;
    let peakSlots = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakSlots = Math.max(peakSlots, t.neuron.handshake.load().active);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    const silent = Array.from({ length: 150 }, () => idleClient(null));
    const stoppers = Array.from({ length: 50 }, (_, i) => newPatient(`stopper-${run}-${i}`));
    const stopped = stoppers.map((p) => idleClient(p));
    const patients = Array.from({ length: 5 }, (_, i) => newPatient(`legit-${run}-${i}`));
    const completed = await Promise.all(patients.map(legit));
    const silentResults = await Promise.all(silent);
    const stoppedResults = await Promise.all(stopped);
    sampling = false;
    await sampler;

    assert.deepEqual(
      completed.map((r) => r.status),
      ['new', 'new', 'new', 'new', 'new'],
    );
    for (const result of silentResults) {
      assertTimedOut(result, 'silent client');
      assert.ok(result.frames.length === 1, 'a silent client gets no challenge');
      const sinceRequest = result.closedAt - result.requestedAt;
      assert.ok(
        sinceRequest >= AUTH_TIMEOUT_MS - EARLY_MS,
        `closed ${sinceRequest.toFixed(0)} ms after the upgrade request, before the ${AUTH_TIMEOUT_MS} ms deadline`,
      );
      const sinceOpen = result.closedAt - result.openedAt;
      assert.ok(sinceOpen <= AUTH_TIMEOUT_MS + LATE_MS, `closed only ${sinceOpen.toFixed(0)} ms after opening`);
    }
    for (const result of stoppedResults) {
      assertTimedOut(result, 'client that stopped after the challenge');
      assert.equal(result.frames[0]!['type'], 'handshake.challenge');
      // The challenge deadline starts when the challenge is sent, before this client read it.
      const sinceRequest = result.closedAt - result.requestedAt;
      assert.ok(sinceRequest >= CHALLENGE_TIMEOUT_MS - EARLY_MS, `closed ${sinceRequest.toFixed(0)} ms after the upgrade request`);
      const sinceChallenge = result.closedAt - result.challengedAt!;
      assert.ok(sinceChallenge <= CHALLENGE_TIMEOUT_MS + LATE_MS, `closed only ${sinceChallenge.toFixed(0)} ms after the challenge`);
    }
    assert.ok(peakSlots <= CEILING, `at most ${CEILING} slots held, saw ${peakSlots}`);
    // Server side: no failed handshake ended before its deadline (measured from admission).
    const durations = (await t.neuron.metrics.getSingleMetric('neuron_handshake_duration_seconds')!.get()).values;
    const failedUnder = (le: number): number =>
      durations.find(
        (v) =>
          (v as { metricName?: string }).metricName === 'neuron_handshake_duration_seconds_bucket' &&
          v.labels['outcome'] === 'failed' &&
          v.labels['le'] === le,
      )?.value ?? NaN;
    assert.equal(failedUnder(0.25), 0, 'a failed handshake ended within 250 ms of admission, before its 300 ms deadline');
    assert.equal(
      durations.find(
        (v) => (v as { metricName?: string }).metricName === 'neuron_handshake_duration_seconds_count' && v.labels['outcome'] === 'failed',
      )?.value,
      200,
    );

    // Every slot came back, each idle client left one AUTH_TIMEOUT audit entry and nothing else.
    await eventually(() => t.neuron.handshake.activeSessions().length === 0, 10_000, 'sessions closed');
    assert.deepEqual(t.neuron.handshake.load(), { active: 0, queued: 0 });
    await eventually(async () => (await failureCount('AUTH_TIMEOUT')) - timeoutsBefore === 200, 10_000, '200 AUTH_TIMEOUT audit entries');
    const relationships = await t.neuron.storage.db.selectFrom('relationships').select('patient_agent_id').execute();
    assert.equal(relationships.length - relationshipsBefore, 5);
    const stopperIds = new Set(stoppers.map((p) => p.agentId));
    assert.equal(relationships.filter((r) => stopperIds.has(r.patient_agent_id)).length, 0);
    const directory = await t.neuron.storage.db
      .selectFrom('patients')
      .select('patient_agent_id')
      .where('patient_agent_id', 'in', [...stopperIds])
      .execute();
    assert.equal(directory.length, 0, 'no directory entry for a client that never answered');
  });
});

describe('slow and partial input', () => {
  test('a frame that never finishes still meets the auth deadline; upgrade headers that never finish are cut by server.request_timeout_ms', async () => {
    const port = t.port;
    // Half a frame: a text frame header announcing 300 bytes, then 10 of them, then silence.
    const halfFrames = Array.from(
      { length: 20 },
      () =>
        new Promise<{ codes: string[]; closeCode: number | null; ms: number }>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          const reader = new FrameReader();
          const codes: string[] = [];
          let closeCode: number | null = null;
          let upgraded = false;
          let head = '';
          const began = performance.now();
          socket.on('error', () => undefined);
          socket.on('connect', () =>
            socket.write(
              `GET /ws/handshake HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
            ),
          );
          socket.on('data', (chunk: Buffer) => {
            if (!upgraded) {
              head += chunk.toString('latin1');
              if (!head.includes('\r\n\r\n')) return;
              upgraded = true;
              assert.match(head, /^HTTP\/1\.1 101 /);
              socket.write(wsFrame(0x1, Buffer.alloc(300, 0x20)).subarray(0, 18));
              return;
            }
            reader.feed(chunk, (opcode, payload) => {
              if (opcode === 0x1) codes.push(String((JSON.parse(payload.toString()) as { code?: string }).code));
              if (opcode === 0x8) {
                closeCode = payload.readUInt16BE(0);
                socket.destroy();
              }
            });
          });
          socket.on('close', () => resolve({ codes, closeCode, ms: performance.now() - began }));
        }),
    );
    // Upgrade headers that stop half way (slowloris on the upgrade path).
    const halfHeaders = Array.from(
      { length: 20 },
      () =>
        new Promise<{ answer: string; ms: number }>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          let answer = '';
          const began = performance.now();
          socket.on('error', () => undefined);
          socket.on('connect', () => socket.write(`GET /ws/handshake HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgr`));
          socket.on('data', (chunk: Buffer) => {
            answer += chunk.toString('latin1');
          });
          socket.on('close', () => resolve({ answer, ms: performance.now() - began }));
        }),
    );

    for (const result of await Promise.all(halfFrames)) {
      assert.deepEqual(result.codes, ['AUTH_TIMEOUT']);
      assert.equal(result.closeCode, 4001);
      assert.ok(result.ms >= AUTH_TIMEOUT_MS - EARLY_MS && result.ms <= AUTH_TIMEOUT_MS + LATE_MS, `${result.ms.toFixed(0)} ms`);
    }
    for (const result of await Promise.all(halfHeaders)) {
      // Node checks request deadlines once a second (src/http/app.ts), so allow a second past the timeout.
      assert.ok(
        result.ms >= REQUEST_TIMEOUT_MS - EARLY_MS && result.ms <= REQUEST_TIMEOUT_MS + 1_000 + LATE_MS,
        `${result.ms.toFixed(0)} ms`,
      );
      assert.match(result.answer, /^HTTP\/1\.1 408 /);
      assert.match(result.answer, /"code":"REQUEST_TIMEOUT"/);
    }
    await eventually(() => t.neuron.handshake.activeSessions().length === 0, 10_000, 'sessions closed');
    assert.deepEqual(t.neuron.handshake.load(), { active: 0, queued: 0 });
    assert.equal((await fetch(`${t.url}/health/live`)).status, 200);
  });
});
