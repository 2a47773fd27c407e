/**
 * Shared by the benchmarks: a benchmark Neuron's config, data directory, provider row, start and stop; the prepared
 * patients and the closed-loop client that drives them; CPU, memory and latency figures. `waitForHandshakeUrl` waits
 * for a Neuron started as `neuron start` to print its handshake URL, then keeps draining its output so a chatty server
 * never blocks on a full pipe.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createConsentToken, establishRelationship, patientKeysFromSeed, type PatientKeys } from 'neuron-careagent-client';
import { openStorage } from '../src/foundation/storage/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The Node flags of `root`'s bin/neuron.js shebang (`#!/usr/bin/env -S node <flags>`), so every
 * benchmark Neuron runs as it does when executed as a command (a baseline checkout with its own
 * flags); BENCH_NODE_FLAGS="<flags>" replaces them, to compare.
 */
export function serverNodeFlags(root: string): string[] {
  return (
    process.env['BENCH_NODE_FLAGS'] ??
    /^#!\S*env -S node(.*)$/m.exec(readFileSync(path.join(root, 'bin', 'neuron.js'), 'utf8').split('\n', 1)[0]!)?.[1] ??
    ''
  )
    .split(' ')
    .filter((flag) => flag !== '');
}

/** This checkout's (see serverNodeFlags). */
export const SERVER_NODE_FLAGS = serverNodeFlags(ROOT);

/** The provider every benchmark Neuron serves (a published synthetic test NPI). */
export const PROVIDER_NPI = '1679576722';

/**
 * The Node arguments of a benchmark Neuron in checkout `root`: its shebang's flags, plus a V8 CPU profile written to
 * BENCH_PROFILE_DIR=<dir> when that is set.
 */
export function neuronNodeArgs(root: string = ROOT): string[] {
  const profileDir = process.env['BENCH_PROFILE_DIR'];
  return [...serverNodeFlags(root), ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
}

/**
 * The config of a benchmark Neuron (SQLite in ./data beside the config, any free port, no
 * discovery or registry, warnings only) with `handshake` as its handshake section.
 */
export function benchNeuronConfig(handshake: Record<string, unknown>): Record<string, unknown> {
  return {
    organization: { name: 'Bench Practice', npi: '1245319599' },
    data_dir: './data',
    server: { host: '127.0.0.1', port: 0 },
    discovery: { enabled: false },
    registry: { enabled: false },
    logging: { level: 'warn', pretty: 'never' },
    handshake,
  };
}

/** Stops a server process (SIGTERM) and waits until it has exited. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  // A process killed by a signal has no exit code, only a signal code: it will not exit again.
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export interface PreparedPatient {
  agentId: string;
  keys: PatientKeys;
  token: { payload: string; signature: string };
}

/** Keys and tokens made before the clock starts, so the measured time is the handshake's alone. */
export function preparePatients(count: number, label: string): PreparedPatient[] {
  return Array.from({ length: count }, (_, i) => {
    const agentId = `bench-${label}-${i}`;
    // From a random seed, not generateKeyPairSync: on Node 20, thousands of generated pairs followed
    // by JWK exports sometimes deadlock the generator in a GC-run destructor of an earlier keygen job.
    const keys = patientKeysFromSeed(randomBytes(32));
    const token = createConsentToken({ patientAgentId: agentId, providerNpi: PROVIDER_NPI, consentedActions: ['office_visit'] }, keys);
    return { agentId, keys, token };
  });
}

export async function waitForHandshakeUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  let output = '';
  const handshakeUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Neuron did not start:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /handshake\s+(ws:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the Neuron exited with ${code}:\n${output}`));
    });
  });
  child.stdout!.resume();
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[neuron] ${chunk.toString()}`));
  return handshakeUrl;
}

// ---------------------------------------------------------------- a benchmark Neuron

/** A benchmark Neuron running as its own process, and the directory of its config and data. */
export interface BenchNeuron {
  child: ChildProcess;
  pid: number;
  handshakeUrl: string;
  dir: string;
}

/** A fresh directory with `config` as its neuron.config.json; the Neuron keeps its data in `<dir>/data`. */
export function prepareBenchDirectory(config: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'neuron-bench-'));
  writeFileSync(path.join(dir, 'neuron.config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/**
 * Migrates the database (PostgreSQL at `storageUrl`, or SQLite at `sqliteFile` when the URL is '') and adds the
 * active provider every benchmark patient consents to, before the Neuron starts, so no handshake finds it missing.
 */
export async function insertBenchProvider(storageUrl: string, sqliteFile: string): Promise<void> {
  const storage = await openStorage({ url: storageUrl, sqliteFile, sqliteSynchronous: 'FULL', busyTimeoutMs: 5_000, poolMax: 1 });
  try {
    await storage.migrate();
    const at = new Date().toISOString();
    await storage.db
      .insertInto('providers')
      .values({
        npi: PROVIDER_NPI,
        name: 'Dr. Bench',
        provider_types: '["physician"]',
        specialty: null,
        credentials: '[]',
        status: 'active',
        provider_endpoint: 'wss://provider.example/agent',
        provider_public_key: null,
        notification_url: null,
        registration_id: null,
        credential_id: null,
        credential_digest: null,
        last_seen_at: null,
        registry_state: 'unregistered',
        registry_error: null,
        created_at: at,
        updated_at: at,
      })
      .execute();
  } finally {
    await storage.close();
  }
}

/** How long a benchmark Neuron may take to print its URL: its sources may run through tsx on a loaded machine. */
const START_TIMEOUT_MS = 60_000;

/**
 * Runs `neuron start` on the config in `dir` (prepareBenchDirectory) with this checkout's Node arguments and waits for
 * its handshake URL, warning when it runs its sources through tsx (then its CPU and memory are not the build's).
 * A Neuron that does not start is killed and `dir` removed.
 */
export async function startBenchNeuron(dir: string): Promise<BenchNeuron> {
  const bin = path.join(ROOT, 'bin', 'neuron.js');
  const child = spawn(process.execPath, [...neuronNodeArgs(), bin, 'start', '--config', path.join(dir, 'neuron.config.json')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // NODE_DEBUG=neuron: bin/neuron.js says whether it runs the build in dist/ or the sources.
    env: { ...process.env, NO_COLOR: '1', NODE_DEBUG: [process.env['NODE_DEBUG'], 'neuron'].filter(Boolean).join(',') },
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    if (/through tsx/.test(chunk.toString())) {
      process.stderr.write(
        "\nwarning: the Neuron runs its sources through tsx (dist/ missing or older than src/; run `npm run build`): its memory is not the compiled build's\n",
      );
    }
  });
  try {
    return { child, pid: child.pid!, handshakeUrl: await waitForHandshakeUrl(child, START_TIMEOUT_MS), dir };
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Stops a benchmark Neuron and removes its directory. */
export async function stopBenchNeuron(neuron: BenchNeuron): Promise<void> {
  await stopProcess(neuron.child);
  rmSync(neuron.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- the client

/** The completed handshakes' client-observed latencies (ms) and the failed ones counted by error code. */
export interface HandshakeBatch {
  latencies: number[];
  failures: Record<string, number>;
}

/** The client error's code, with its cause's (a socket's) when it has one: what a failed handshake is counted under. */
function failureCode(error: unknown): string {
  const failure = error as { code?: string; cause?: { code?: string } };
  return `${failure.code ?? 'UNKNOWN'}${failure.cause?.code ? `/${failure.cause.code}` : ''}`;
}

/** How often a long batch says how far it is, so that a stall is visible while it happens. */
const PROGRESS_EVERY_MS = 15_000;

/**
 * Completes every patient's handshake through the client library, `concurrency` at a time (forEachConcurrently);
 * worker i sends to urls[i % urls.length], as a least-connections balancer would spread them. A latency runs from
 * connect to verified attestation, queue wait included; a handshake still open after `timeoutMs` is a failure.
 */
export async function driveHandshakes(
  urls: readonly string[],
  patients: readonly PreparedPatient[],
  concurrency: number,
  timeoutMs: number,
): Promise<HandshakeBatch> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const progress = setInterval(
    () => process.stderr.write(`[${latencies.length} done, ${Object.values(failures).reduce((a, b) => a + b, 0)} failed] `),
    PROGRESS_EVERY_MS,
  );
  try {
    await forEachConcurrently(patients, concurrency, async (patient, worker) => {
      const began = performance.now();
      try {
        await establishRelationship(urls[worker % urls.length]!, {
          patientAgentId: patient.agentId,
          keys: patient.keys,
          endpoint: `wss://${patient.agentId}.example/agent`,
          consentToken: patient.token,
          timeoutMs,
        });
        latencies.push(performance.now() - began);
      } catch (error) {
        const code = failureCode(error);
        failures[code] = (failures[code] ?? 0) + 1;
      }
    });
  } finally {
    clearInterval(progress);
  }
  return { latencies, failures };
}

/** What every benchmark reports of a measured batch. */
export interface BatchFigures {
  completed: number;
  failed: number;
  failures: Record<string, number>;
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
}

/** The figures of a batch that took `seconds` of wall time. */
export function batchFigures(batch: HandshakeBatch, seconds: number): BatchFigures {
  const sorted = [...batch.latencies].sort((a, b) => a - b);
  return {
    completed: sorted.length,
    failed: Object.values(batch.failures).reduce((a, b) => a + b, 0),
    failures: batch.failures,
    seconds,
    perSecond: sorted.length / seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
  };
}

/** Linux reports process CPU time in clock ticks; 100 per second on every mainstream kernel config. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * User + system CPU time of a process so far, in clock ticks (`/proc/<pid>/stat`), or 0 when the
 * process has exited (its time is lost, not counted twice).
 */
export function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at "state"; utime and stime
    // are fields 14 and 15 of the whole line, so 11 and 12 here.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** CPU milliseconds per handshake from a number of clock ticks. */
export function cpuMsPer(ticks: number, handshakes: number): number {
  return ((ticks / CLOCK_TICKS_PER_SECOND) * 1_000) / Math.max(handshakes, 1);
}

/** A memory figure of a running process from `/proc/<pid>/status`, in kB: VmRSS (now) or VmHWM (its peak). */
export function memoryKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

/**
 * Runs `task` on every item, at most `concurrency` at a time: that many workers, each taking the next
 * item as soon as its last one is done (a closed loop, as patients retrying at once would be).
 * `worker` is the index of the worker running the item.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (index: number): Promise<void> => {
    while (next < items.length) await task(items[next++]!, index);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, (_, index) => worker(index)));
}

/** The p-th percentile (nearest rank) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
