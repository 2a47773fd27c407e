/**
 * Stress phase 3: a flood of WebSocket upgrades at the default admission limits (ceiling 10,
 * queue 10 000, queue timeout 30 s, auth timeout 10 s). The flood's clients are hostile: once
 * admitted they send nothing and hold their slot until the auth deadline. Measured: how every
 * attempt was answered (nobody may hang), the Neuron's memory against the queue limit, the REST
 * API's /health/live latency meanwhile (from a separate thread, so the flood's client work does
 * not distort it), and how long a few legitimate patients that honour Retry-After take to get in.
 */
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { HandshakeError } from 'neuron-careagent-client';
import { RssSampler, handshake, newPatient, percentile, say, startServer, type Memory } from './common.ts';

export interface FloodPhaseResult {
  attempts: number;
  admitted: number;
  queueFull: number;
  queueTimeout: number;
  /** 503 answers without a Retry-After header (must be 0). */
  missingRetryAfter: number;
  other: Record<string, number>;
  /** Attempts with no answer within the client's deadline (must be 0). */
  hung: number;
  launchSeconds: number;
  seconds: number;
  maxQueued: number;
  memory: Memory;
  health: { samples: number; p50: number; p99: number; max: number; failures: number };
  legit: { patients: number; completed: number; attemptsMax: number; secondsMax: number };
  problems: string[];
}

type Answer =
  | { kind: 'admitted'; closeCode: number | null }
  | { kind: 'refused'; status: number; code: string; retryAfter: string | null }
  | { kind: 'reset' }
  | { kind: 'hung' };

/** One raw upgrade request; admitted ones stay silent until the Neuron closes them. */
function attempt(port: number, deadlineMs: number, counters: { open: number }): Promise<Answer> {
  return new Promise((resolve) => {
    counters.open += 1;
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let answer: Answer | null = null;
    let done = false;
    const finish = (result: Answer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      counters.open -= 1;
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'hung' }), deadlineMs);
    socket.on('error', () => undefined);
    socket.on('close', () => finish(answer ?? { kind: 'reset' }));
    socket.on('connect', () => {
      socket.write(
        `GET /ws/handshake HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (answer?.kind === 'admitted') {
        // The Neuron's close frame (after its AUTH_TIMEOUT error frame) ends it.
        const closeAt = data.indexOf(Buffer.from([0x88]));
        if (closeAt >= 0 && data.length >= closeAt + 4) {
          answer = { kind: 'admitted', closeCode: data.readUInt16BE(closeAt + 2) };
          finish(answer);
        }
        return;
      }
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = data.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 101) {
        answer = { kind: 'admitted', closeCode: null };
        data = data.subarray(end + 4);
        return;
      }
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      let code = 'UNKNOWN';
      try {
        code = String((JSON.parse(data.subarray(end + 4, end + 4 + length).toString('utf8')) as { code?: unknown }).code);
      } catch {
        // not a problem document
      }
      answer = { kind: 'refused', status, code, retryAfter: /\r\nretry-after: (\S+)/i.exec(head)?.[1] ?? null };
      finish(answer);
    });
  });
}

/** GET /health/live in a loop on one keep-alive connection, in a worker thread (plain JS, no loader needed). */
const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const samples = [];
let running = true;
parentPort.on('message', () => { running = false; });
function once() {
  return new Promise((resolve) => {
    const began = performance.now();
    const req = http.get(workerData.url, { agent, timeout: 10000 }, (res) => {
      res.resume();
      res.on('end', () => { samples.push([began, performance.now() - began, res.statusCode]); resolve(); });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => { samples.push([began, performance.now() - began, 0]); resolve(); });
  });
}
(async () => {
  while (running) {
    await once();
    await new Promise((r) => setTimeout(r, workerData.intervalMs));
  }
  parentPort.postMessage({ samples, origin: performance.timeOrigin });
  agent.destroy();
})();
`;

export async function floodPhase(options: { attempts: number; legitPatients: number }): Promise<FloodPhaseResult> {
  // The default handshake limits: this is what a Neuron out of the box does under a flood.
  const server = await startServer({}, { inspect: true });
  const problems: string[] = [];
  try {
    const port = Number(new URL(server.neuron.url).port);
    const url = server.neuron.handshakeUrl;
    const sampler = new RssSampler(server.neuron.pid);
    for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 10 }, () => handshake(url, newPatient('flood-warm'))));
    await sleep(500);
    const before = await server.collectGarbage();
    sampler.start();

    const probe = new Worker(PROBE_SOURCE, { eval: true, workerData: { url: `${server.neuron.url}/health/live`, intervalMs: 20 } });
    const probeDone = new Promise<{ samples: Array<[number, number, number]>; origin: number }>((resolve) =>
      probe.once('message', resolve),
    );
    await sleep(500);

    say(`flood: ${options.attempts} upgrade attempts at the default limits`);
    const began = performance.now();
    const counters = { open: 0 };
    const answers: Array<Promise<Answer>> = [];
    // The client's own descriptor limit bounds how many sockets it can hold; stay well under it.
    const maxOpen = 15_000;
    const clientDeadlineMs = 75_000; // the queue timeout (30 s) plus the auth timeout (10 s) plus room
    const legit = (async () => {
      await sleep(2_000);
      return Promise.all(
        Array.from({ length: options.legitPatients }, async () => {
          const patient = newPatient('flood-legit');
          const started = performance.now();
          for (let tries = 1; tries <= 40; tries++) {
            try {
              await handshake(url, patient, 90_000);
              return { ok: true, tries, seconds: (performance.now() - started) / 1000 };
            } catch (error) {
              if (!(error instanceof HandshakeError) || error.status !== 503 || error.retryAfter === undefined) {
                problems.push(`a legitimate patient during the flood failed with ${(error as Error).message}`);
                return { ok: false, tries, seconds: (performance.now() - started) / 1000 };
              }
              await sleep(error.retryAfter * 1_000);
            }
          }
          return { ok: false, tries: 40, seconds: (performance.now() - started) / 1000 };
        }),
      );
    })();
    for (let i = 0; i < options.attempts; i++) {
      while (counters.open >= maxOpen) await sleep(5);
      answers.push(attempt(port, clientDeadlineMs, counters));
      if (i % 200 === 199) await sleep(10);
    }
    const launchSeconds = (performance.now() - began) / 1000;
    const settled = await Promise.all(answers);
    const floodEnded = performance.now();
    const legitResults = await legit;
    probe.postMessage('stop');
    const { samples, origin } = await probeDone;
    await probe.terminate();
    sampler.stop();
    await sleep(1_000);
    const after = await server.collectGarbage();

    let admitted = 0;
    let queueFull = 0;
    let queueTimeout = 0;
    let missingRetryAfter = 0;
    let hung = 0;
    const other: Record<string, number> = {};
    for (const answer of settled) {
      if (answer.kind === 'admitted') {
        admitted += 1;
        if (answer.closeCode !== 4001)
          other[`admitted, closed ${answer.closeCode}`] = (other[`admitted, closed ${answer.closeCode}`] ?? 0) + 1;
      } else if (answer.kind === 'refused') {
        if (answer.status === 503 && answer.retryAfter === null) missingRetryAfter += 1;
        if (answer.status === 503 && answer.code === 'HANDSHAKE_QUEUE_FULL') queueFull += 1;
        else if (answer.status === 503 && answer.code === 'HANDSHAKE_QUEUE_TIMEOUT') queueTimeout += 1;
        else other[`${answer.status} ${answer.code}`] = (other[`${answer.status} ${answer.code}`] ?? 0) + 1;
      } else if (answer.kind === 'hung') hung += 1;
      else other['reset without an answer'] = (other['reset without an answer'] ?? 0) + 1;
    }
    if (hung > 0) problems.push(`${hung} flood clients got no answer within ${clientDeadlineMs} ms`);
    if (missingRetryAfter > 0) problems.push(`${missingRetryAfter} 503 answers without Retry-After`);
    if (Object.keys(other).length > 0) problems.push(`unexpected answers: ${JSON.stringify(other)}`);

    // Health latency while the flood's sockets were open (the worker's clock shares the time origin offset).
    const offset = origin - performance.timeOrigin;
    const during = samples.filter(([at]) => at + offset >= began && at + offset <= floodEnded);
    const latencies = during.map(([, latency]) => latency);
    const failures = during.filter(([, , status]) => status !== 200).length;
    if (server.neuron.child.exitCode !== null || server.neuron.child.signalCode !== null)
      problems.push('the Neuron process exited during the flood');
    return {
      attempts: options.attempts,
      admitted,
      queueFull,
      queueTimeout,
      missingRetryAfter,
      other,
      hung,
      launchSeconds,
      seconds: (floodEnded - began) / 1000,
      maxQueued: 10_000,
      memory: {
        rssKb: { baseline: before.rssKb, peak: sampler.peakKb, after: after.rssKb },
        heapKb: { baseline: before.heapUsedKb, after: after.heapUsedKb },
      },
      health: {
        samples: during.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: Math.max(...latencies),
        failures,
      },
      legit: {
        patients: options.legitPatients,
        completed: legitResults.filter((r) => r.ok).length,
        attemptsMax: Math.max(...legitResults.map((r) => r.tries)),
        secondsMax: Math.max(...legitResults.map((r) => r.seconds)),
      },
      problems,
    };
  } finally {
    await server.stop();
  }
}
