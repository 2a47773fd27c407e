/**
 * `npm run bench`: complete consent handshakes against a real Neuron running as its own process
 * (`node <bin/neuron.js's shebang flags> bin/neuron.js start`, embedded SQLite with its default
 * durability, audit on; run `npm run build` first, or it warns that the sources ran through tsx),
 * driven from this process through the patient client library (src/client).
 *
 * For every scenario a fresh Neuron starts on a fresh data directory with one active provider;
 * every handshake is a different patient, so every one is `new` (the expensive case: a
 * relationship, a directory entry, a provider notice and an audit entry in one transaction).
 *
 * Measured per scenario:
 *   handshakes/s      completed handshakes / wall time of the measured batch
 *   p50/p95/p99       client-observed latency of one handshake (connect to verified attestation,
 *                     queue wait included)
 *   server CPU ms/hs  (utime + stime of the Neuron process over the batch) / handshakes, from
 *                     /proc/<pid>/stat: the server's own CPU time, not the client's
 *   + notices         the same, measured until the outbox worker has also handled every
 *                     provider notice the batch queued (it runs behind the handshakes)
 *   peak RSS          VmHWM of the Neuron process at the end of the scenario
 *   idle RSS          VmRSS of the Neuron process once started, before any handshake
 *
 * After the scenarios, the `instances` section (bench/multi-instance.ts) runs the same batch through
 * two Neuron processes sharing one PostgreSQL database and through one on SQLite, side by side;
 * the PostgreSQL part needs NEURON_TEST_POSTGRES_URL and is left out with a note without it.
 *
 * Then the `floor` section (bench/floor.ts): the same client against bench/floor-server.js, which
 * does only the handshake's unavoidable work (WebSocket, JSON, then Ed25519), for the Neuron's CPU
 * per handshake to be read against.
 *
 * Options: --quick (a tenth of the handshakes, for a smoke run), --only <name,...> (scenario names,
 * `instances` and/or `floor`), --json <file>,
 * --config '<json>' (top-level config sections for the Neuron, for example a storage setting);
 * BENCH_PROFILE_DIR=<dir> in the environment writes a CPU profile of each Neuron there.
 * Linux only (reads /proc).
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import {
  SERVER_NODE_FLAGS,
  batchFigures,
  benchNeuronConfig,
  cpuMsPer,
  cpuTicks,
  driveHandshakes,
  insertBenchProvider,
  memoryKb,
  prepareBenchDirectory,
  preparePatients,
  startBenchNeuron,
  stopBenchNeuron,
  type BatchFigures,
  type BenchNeuron,
} from './common.ts';
import { floorTable, runFloor, type FloorResult } from './floor.ts';
import BetterSqlite3 from 'better-sqlite3';
import { comparisonTable, runInstanceComparison, type Comparison } from './multi-instance.ts';
import { ONE_ADDRESS_FOR_EVERYONE } from '../stress/common.ts';
import { runPinned } from './pinned.ts';

/** Handshakes run before measuring, so the JIT and the database file are warm. */
const WARMUP_HANDSHAKES = 200;
/** Long enough for the last of 10 000 patients through 10 slots on a slow machine; a handshake still open by then is reported as a failure rather than stalling the bench. */
const CLIENT_TIMEOUT_MS = 3 * 60_000;

interface Scenario {
  name: string;
  /** Handshakes in flight from the client at once. */
  concurrency: number;
  /** handshake.max_concurrent_handshakes of the Neuron. */
  ceiling: number;
  handshakes: number;
  /** All handshakes start at the same moment (no client-side pacing). */
  simultaneous?: boolean;
  /** Extra handshake config. */
  handshakeConfig?: Record<string, number>;
  note: string;
}

/** Extra top-level config sections from --config '<json>' (experiments: other storage settings and the like). */
let extraConfig: Record<string, unknown> = {};

const SCENARIOS: Scenario[] = [
  { name: 'c1', concurrency: 1, ceiling: 10, handshakes: 500, note: 'one at a time: latency floor' },
  { name: 'c10', concurrency: 10, ceiling: 10, handshakes: 3_000, note: 'default ceiling, no queueing' },
  { name: 'c100-ceiling10', concurrency: 100, ceiling: 10, handshakes: 3_000, note: 'default ceiling, 90 queued at any time' },
  { name: 'c100', concurrency: 100, ceiling: 1_000, handshakes: 3_000, note: 'ceiling raised' },
  { name: 'c1000', concurrency: 1_000, ceiling: 1_000, handshakes: 5_000, note: 'ceiling raised' },
  {
    name: 'burst10k',
    concurrency: 10_000,
    ceiling: 10,
    handshakes: 10_000,
    simultaneous: true,
    // The whole burst waits in the queue; give the last in line time to be served.
    handshakeConfig: { queue_timeout_ms: 3 * 60_000, max_queued: 10_000 },
    note: '10 000 patients at once, default ceiling',
  },
];

interface Result extends BatchFigures {
  scenario: Scenario;
  serverCpuMsPerHandshake: number;
  /** Including the outbox worker's handling of the provider notices, measured until they are all handled. */
  serverCpuMsWithNotices: number;
  /** How long after the batch the outbox worker took to handle the remaining notices. */
  drainSeconds: number;
  peakRssMb: number;
  idleRssMb: number;
}

// ---------------------------------------------------------------- the Neuron under test

async function startServer(scenario: Scenario): Promise<BenchNeuron> {
  const dir = prepareBenchDirectory({
    // Every patient of the bench connects from 127.0.0.1: the per-address cap is lifted so that one
    // address can stand for thousands of patients (as in the stress run).
    ...benchNeuronConfig({
      max_concurrent_handshakes: scenario.ceiling,
      max_pending_per_address: ONE_ADDRESS_FOR_EVERYONE,
      ...scenario.handshakeConfig,
    }),
    ...extraConfig,
  });
  // The provider row goes straight into the database the Neuron will open.
  await insertBenchProvider('', path.join(dir, 'data', 'neuron.sqlite'));
  return await startBenchNeuron(dir);
}

/** Most time to wait for the outbox worker to handle the notices of the batch (it takes seconds). */
const DRAIN_TIMEOUT_MS = 60_000;

/** Waits until no outbox row is due (the worker has handled, or held for a pull, every notice). */
async function waitForOutboxDrain(server: BenchNeuron): Promise<number> {
  const began = performance.now();
  const reader = new BetterSqlite3(path.join(server.dir, 'data', 'neuron.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const due = reader.prepare(`SELECT count(*) AS n FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?`);
    while (performance.now() - began < DRAIN_TIMEOUT_MS) {
      const { n } = due.get(new Date().toISOString()) as { n: number };
      if (n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    reader.close();
  }
  return (performance.now() - began) / 1_000;
}

async function runScenario(scenario: Scenario, scale: number): Promise<Result> {
  const count = Math.max(10, Math.round(scenario.handshakes * scale));
  process.stderr.write(`\n${scenario.name}: ${count} handshakes, concurrency ${scenario.concurrency}, ceiling ${scenario.ceiling} ... `);
  const server = await startServer(scenario);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const idleRssMb = memoryKb(server.pid, 'VmRSS') / 1024;
    const warmup = preparePatients(Math.max(10, Math.round(WARMUP_HANDSHAKES * scale)), `${scenario.name}-warm`);
    await driveHandshakes([server.handshakeUrl], warmup, 10, CLIENT_TIMEOUT_MS);
    await waitForOutboxDrain(server);
    const patients = preparePatients(count, scenario.name);

    const ticksBefore = cpuTicks(server.pid);
    const began = performance.now();
    const batch = await driveHandshakes(
      [server.handshakeUrl],
      patients,
      scenario.simultaneous ? count : scenario.concurrency,
      CLIENT_TIMEOUT_MS,
    );
    const figures = batchFigures(batch, (performance.now() - began) / 1_000);
    const ticks = cpuTicks(server.pid) - ticksBefore;
    // The outbox worker handles each new relationship's provider notice after the handshake; let
    // it catch up so the second CPU figure covers all the work a handshake causes.
    const drainSeconds = await waitForOutboxDrain(server);
    const ticksWithNotices = cpuTicks(server.pid) - ticksBefore;
    const peakRssMb = memoryKb(server.pid, 'VmHWM') / 1024;

    const result: Result = {
      scenario,
      ...figures,
      serverCpuMsPerHandshake: cpuMsPer(ticks, figures.completed),
      serverCpuMsWithNotices: cpuMsPer(ticksWithNotices, figures.completed),
      drainSeconds,
      peakRssMb,
      idleRssMb,
    };
    process.stderr.write(
      `${result.perSecond.toFixed(0)}/s, outbox drained ${drainSeconds.toFixed(1)} s later${result.failed > 0 ? `, ${result.failed} FAILED ${JSON.stringify(result.failures)}` : ''}\n`,
    );
    return result;
  } finally {
    await stopBenchNeuron(server);
  }
}

// ---------------------------------------------------------------- report

function table(results: Result[]): string {
  const lines = [
    '| scenario | concurrency | ceiling | handshakes | completed | failed | handshakes/s | p50 ms | p95 ms | p99 ms | server CPU ms/handshake | + notices | peak RSS MB | idle RSS MB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.scenario.name} (${r.scenario.note}) | ${r.scenario.simultaneous ? `${r.completed + r.failed} at once` : r.scenario.concurrency} | ${r.scenario.ceiling} | ${r.completed + r.failed} | ${r.completed} | ${r.failed} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.serverCpuMsPerHandshake.toFixed(2)} | ${r.serverCpuMsWithNotices.toFixed(2)} | ${r.peakRssMb.toFixed(0)} | ${r.idleRssMb.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

function machine(): string {
  const cpu = cpus();
  return `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ${process.platform} ${process.arch}`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // The pinned mode (bench/pinned.ts) is a run of its own: issue 16's layout, nothing else.
  if (args.includes('--pinned')) return runPinned(args);
  const scale = args.includes('--quick') ? 0.1 : 1;
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',')) : null;
  const jsonAt = args.indexOf('--json');
  const configAt = args.indexOf('--config');
  if (configAt >= 0) extraConfig = JSON.parse(args[configAt + 1] ?? '{}') as Record<string, unknown>;
  const scenarios = SCENARIOS.filter((s) => only === null || only.has(s.name));
  if (process.platform !== 'linux') throw new Error('the bench reads /proc and runs on Linux only');

  const results: Result[] = [];
  for (const scenario of scenarios) results.push(await runScenario(scenario, scale));
  const instances: Comparison | null = only === null || only.has('instances') ? await runInstanceComparison(scale) : null;
  const floor: FloorResult[] | null = only === null || only.has('floor') ? await runFloor(scale) : null;

  process.stdout.write(`\nMachine: ${machine()}\n`);
  if (results.length > 0) {
    process.stdout.write(
      `Server: one Neuron process (node ${[...SERVER_NODE_FLAGS, ''].join(' ')}bin/neuron.js start), embedded SQLite (WAL, synchronous=FULL), audit on; client: this process, src/client.\n\n`,
    );
    process.stdout.write(`${table(results)}\n`);
  }
  if (instances !== null) {
    process.stdout.write(
      `\nInstances: the same batch through one Neuron on SQLite and through two Neurons on one PostgreSQL database (client alternates between them); client and servers share this machine's cores.\n\n`,
    );
    process.stdout.write(`${comparisonTable(instances)}\n`);
  }
  if (floor !== null) {
    process.stdout.write(
      `\nFloor: the same client and patients against bench/floor-server.js, which does only the handshake's unavoidable work (no database, audit, admission, checks or logs).\n\n`,
    );
    process.stdout.write(`${floorTable(floor)}\n`);
  }
  if (jsonAt >= 0 && args[jsonAt + 1])
    writeFileSync(args[jsonAt + 1]!, JSON.stringify({ machine: machine(), results, instances, floor }, null, 2));
  if (results.some((r) => r.failed > 0) || instances?.rows.some((r) => r.failed > 0)) process.exitCode = 1;
}

await main();
