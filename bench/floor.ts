/**
 * The "floor" section of `npm run bench` (`--only floor` alone): the same batch of handshakes, from
 * the same client process and the same prepared patients, against bench/floor-server.js, a server
 * that does only what any implementation of the handshake must do per patient (the WebSocket
 * upgrade, four JSON messages, the close; then also the Ed25519 work). Its CPU per handshake is
 * the floor the Neuron's is read against: what is left above it is the Neuron's own work
 * (admission, schema checks, the database commit, the audit chain, metrics, logging).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import WebSocket from 'ws';
import { signChallenge } from 'neuron-careagent-client/protocol';
import {
  ROOT,
  SERVER_NODE_FLAGS,
  cpuMsPer,
  cpuTicks,
  forEachConcurrently,
  memoryKb,
  preparePatients,
  type PreparedPatient,
} from './common.ts';

export type FloorLevel = 'transport' | 'ed25519';

export interface FloorResult {
  level: FloorLevel;
  concurrency: number;
  handshakes: number;
  perSecond: number;
  serverCpuMsPerHandshake: number;
  idleRssMb: number;
}

/** The same batch sizes as the Neuron's c10 and raised-ceiling c100 scenarios. */
const RUNS: Array<{ level: FloorLevel; concurrency: number; handshakes: number }> = [
  { level: 'transport', concurrency: 10, handshakes: 3000 },
  { level: 'ed25519', concurrency: 10, handshakes: 3000 },
  { level: 'transport', concurrency: 100, handshakes: 3000 },
  { level: 'ed25519', concurrency: 100, handshakes: 3000 },
];
/** As the Neuron scenarios: the first handshakes warm the JIT and are not measured. */
const WARMUP_HANDSHAKES = 200;
/** A floor handshake takes a millisecond or two; ten seconds means the server is gone. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

function oneHandshake(url: string, patient: PreparedPatient): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('floor handshake timed out'));
    }, HANDSHAKE_TIMEOUT_MS);
    let completed = false;
    ws.on('open', () =>
      ws.send(
        JSON.stringify({
          type: 'handshake.auth',
          patient_agent_id: patient.agentId,
          patient_public_key: patient.keys.publicKeyB64,
          patient_endpoint: `wss://${patient.agentId}.example/agent`,
          consent_token_payload: patient.token.payload,
          consent_token_signature: patient.token.signature,
        }),
      ),
    );
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; nonce?: string };
      if (message.type === 'handshake.challenge') {
        ws.send(
          JSON.stringify({ type: 'handshake.challenge_response', signed_nonce: signChallenge(message.nonce!, patient.keys.privateKey) }),
        );
      } else if (message.type === 'handshake.complete') {
        completed = true;
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      clearTimeout(timer);
      if (completed) resolve();
      else reject(new Error('floor handshake closed before handshake.complete'));
    });
  });
}

function drive(url: string, patients: PreparedPatient[], concurrency: number): Promise<void> {
  return forEachConcurrently(patients, concurrency, (patient) => oneHandshake(url, patient));
}

async function startFloorServer(level: FloorLevel): Promise<{ pid: number; url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, path.join(ROOT, 'bench', 'floor-server.js'), level], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    child.once('exit', (code) => reject(new Error(`the floor server exited with ${code}`)));
  });
  return {
    pid: child.pid!,
    url: `ws://127.0.0.1:${port}/ws/handshake`,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function runFloor(scale: number): Promise<FloorResult[]> {
  const results: FloorResult[] = [];
  for (const run of RUNS) {
    const count = Math.max(10, Math.round(run.handshakes * scale));
    process.stderr.write(`\nfloor ${run.level} c${run.concurrency}: ${count} handshakes ... `);
    const server = await startFloorServer(run.level);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const idleRssMb = memoryKb(server.pid, 'VmRSS') / 1024;
      await drive(
        server.url,
        preparePatients(Math.max(10, Math.round(WARMUP_HANDSHAKES * scale)), `floor-${run.level}-warm`),
        run.concurrency,
      );
      const patients = preparePatients(count, `floor-${run.level}-${run.concurrency}`);
      const ticksBefore = cpuTicks(server.pid);
      const began = performance.now();
      await drive(server.url, patients, run.concurrency);
      const seconds = (performance.now() - began) / 1_000;
      const result = {
        ...run,
        handshakes: count,
        perSecond: count / seconds,
        serverCpuMsPerHandshake: cpuMsPer(cpuTicks(server.pid) - ticksBefore, count),
        idleRssMb,
      };
      process.stderr.write(`${result.perSecond.toFixed(0)}/s, ${result.serverCpuMsPerHandshake.toFixed(2)} ms CPU each`);
      results.push(result);
    } finally {
      await server.stop();
    }
  }
  return results;
}

export function floorTable(results: FloorResult[]): string {
  const lines = [
    '| floor server | concurrency | handshakes | handshakes/s | server CPU ms/handshake | idle RSS MB |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const what =
      r.level === 'transport'
        ? 'WebSocket upgrade, 4 JSON messages, close'
        : 'the same + Ed25519 (key import, 2 verifications, 1 signature)';
    lines.push(
      `| ${what} | ${r.concurrency} | ${r.handshakes} | ${r.perSecond.toFixed(0)} | ${r.serverCpuMsPerHandshake.toFixed(2)} | ${r.idleRssMb.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}
