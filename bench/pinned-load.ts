/**
 * The load generator of `npm run bench -- --pinned` (bench/pinned.ts runs it pinned to CPU 1 with
 * `taskset`): drives complete consent handshakes over raw WebSockets at one server and prints one
 * JSON line with the server's own CPU per handshake, handshakes/s and latency percentiles.
 *
 *   node --import tsx bench/pinned-load.ts --url ws://… --pid <server pid> [-n 4000] [-c 100] [--warmup 200]
 *
 * Keys and tokens are made before the clock starts and every patient is new, so every measured
 * handshake is a new relationship. The server's CPU (utime + stime of `--pid`, /proc/<pid>/stat)
 * is read right before and after the measured batch, from this process, so the generator's own
 * preparation never counts. The client checks only that each handshake ends in a
 * `handshake.complete` (verifying attestations would slow the generator, not the server).
 */
import WebSocket from 'ws';
import { signChallenge } from 'neuron-careagent-client/protocol';
import { readFileSync } from 'node:fs';
import { cpuMsPer, cpuTicks, forEachConcurrently, percentile, preparePatients, type PreparedPatient } from './common.ts';

/** A handshake under this load takes well under a second; a minute means the server is stuck. */
const HANDSHAKE_TIMEOUT_MS = 60_000;

/** System CPU ticks of a process (field 15 of /proc/<pid>/stat), to split the total into user and system time. */
function systemTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]);
}

/** utime + stime of the process's main thread (/proc/<pid>/task/<pid>/stat): the JavaScript thread, without V8's helper threads and libuv's pool. */
function mainThreadTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

function oneHandshake(url: string, patient: PreparedPatient): Promise<number> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => ws.terminate(), HANDSHAKE_TIMEOUT_MS);
    let outcome = 'closed before handshake.complete';
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
      const message = JSON.parse(data.toString()) as { type: string; nonce?: string; code?: string };
      if (message.type === 'handshake.challenge') {
        ws.send(
          JSON.stringify({ type: 'handshake.challenge_response', signed_nonce: signChallenge(message.nonce!, patient.keys.privateKey) }),
        );
      } else if (message.type === 'handshake.complete') {
        outcome = 'ok';
      } else {
        outcome = message.code ?? message.type;
      }
    });
    ws.on('error', (error) => {
      outcome = (error as Error & { code?: string }).code ?? error.message;
    });
    ws.on('close', () => {
      clearTimeout(timer);
      if (outcome === 'ok') resolve(performance.now() - began);
      else reject(new Error(outcome));
    });
  });
}

async function drive(
  url: string,
  patients: PreparedPatient[],
  concurrency: number,
): Promise<{ latencies: number[]; errors: Record<string, number> }> {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  await forEachConcurrently(patients, concurrency, async (patient) => {
    try {
      latencies.push(await oneHandshake(url, patient));
    } catch (error) {
      const key = (error as Error).message;
      errors[key] = (errors[key] ?? 0) + 1;
    }
  });
  return { latencies, errors };
}

const url = option('--url', '');
const pid = Number(option('--pid', '0'));
const count = Number(option('-n', '4000'));
const concurrency = Number(option('-c', '100'));
const warmup = Number(option('--warmup', '200'));
const label = option('--label', 'pinned');
if (url === '' || pid === 0) throw new Error('usage: pinned-load.ts --url <ws url> --pid <server pid> [-n N] [-c C] [--warmup W]');

await drive(url, preparePatients(warmup, `${label}-warm`), Math.min(concurrency, 10));
const patients = preparePatients(count, label);
const ticksBefore = cpuTicks(pid);
const systemBefore = systemTicks(pid);
const mainBefore = mainThreadTicks(pid);
const began = performance.now();
const { latencies, errors } = await drive(url, patients, concurrency);
const seconds = (performance.now() - began) / 1_000;
const ticks = cpuTicks(pid) - ticksBefore;
const system = systemTicks(pid) - systemBefore;
const main = mainThreadTicks(pid) - mainBefore;
latencies.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    successes: latencies.length,
    cpu_ms_per_handshake: cpuMsPer(ticks, latencies.length),
    system_ms_per_handshake: cpuMsPer(system, latencies.length),
    main_thread_ms_per_handshake: cpuMsPer(main, latencies.length),
    handshakes_per_s: latencies.length / seconds,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    errors,
  })}\n`,
);
