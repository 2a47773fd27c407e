/**
 * Shared by the benchmarks. `waitForHandshakeUrl` waits for a Neuron started as `neuron start` to print its handshake
 * URL, then keeps draining its output so a chatty server never blocks on a full pipe.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createConsentToken, patientKeysFromSeed, type PatientKeys } from 'neuron-careagent-client';

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
  if (child.exitCode !== null) return;
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
