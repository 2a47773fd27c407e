/**
 * The bench's instance comparison: handshake throughput of two Neuron processes sharing one
 * PostgreSQL database (behind a client that spreads handshakes over both, as a load balancer
 * would) next to one Neuron process on its embedded SQLite file, in the same run, with the same
 * client concurrency, handshake count and Neuron settings. Called by bench/run.ts.
 *
 * The PostgreSQL server is the one NEURON_TEST_POSTGRES_URL names (`export "$(bash
 * scripts/postgres-test-server.sh)"`); each run makes a database of its own and drops it. Without
 * the variable the PostgreSQL row is left out and a note says so.
 *
 * Measured per setup, over the measured batch only (after a warm-up on every instance):
 *   handshakes/s        completed handshakes / wall time
 *   p50/p95/p99         client-observed latency of one handshake
 *   Neuron CPU ms/hs    utime + stime of every Neuron process / completed handshakes
 *   database CPU ms/hs  PostgreSQL: utime + stime of the server backends serving this database
 *                       (its connections from the Neurons) / completed handshakes; SQLite runs
 *                       inside the Neuron process, so its share is in the Neuron column. The
 *                       server's background processes (WAL writer, checkpointer) are not counted
 *   client CPU ms/hs    this process (connections, challenge signatures, attestation checks):
 *                       it shares the machine with the servers, so it bounds what they can do
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import {
  batchFigures,
  benchNeuronConfig,
  cpuMsPer,
  cpuTicks,
  driveHandshakes,
  insertBenchProvider,
  prepareBenchDirectory,
  preparePatients,
  startBenchNeuron,
  stopBenchNeuron,
  type BatchFigures,
  type BenchNeuron,
} from './common.ts';
import pg from 'pg';

/** The same for both setups: enough that the client, not the ceiling, decides what is in flight. */
const CONCURRENCY = 100;
const CEILING_PER_INSTANCE = 100;
const HANDSHAKES = 3_000;
/** Per instance, before measuring: the JIT, the pools and the database caches are warm. */
const WARMUP_PER_INSTANCE = 200;
const CLIENT_TIMEOUT_MS = 5 * 60_000;
export const POSTGRES_URL_VARIABLE = 'NEURON_TEST_POSTGRES_URL';

export interface ComparisonRow extends BatchFigures {
  setup: string;
  instances: number;
  database: 'sqlite' | 'postgres';
  concurrency: number;
  handshakes: number;
  neuronCpuMsPerHandshake: number;
  /** null on SQLite (in-process). */
  databaseCpuMsPerHandshake: number | null;
  /** This bench process: it creates the connections, signs every challenge and verifies every attestation. */
  clientCpuMsPerHandshake: number;
}

export interface Comparison {
  rows: ComparisonRow[];
  /** Why a setup was left out, if one was. */
  notes: string[];
}

// ---------------------------------------------------------------- processes

function neuronConfig(storageUrl: string): Record<string, unknown> {
  return {
    ...benchNeuronConfig({ max_concurrent_handshakes: CEILING_PER_INSTANCE }),
    storage: storageUrl === '' ? {} : { url: storageUrl },
  };
}

// ---------------------------------------------------------------- PostgreSQL

interface BenchDatabase {
  url: string;
  /** CPU ticks of the server backends connected to this database, by pid. */
  backendTicks(): Promise<Map<number, number>>;
  drop(): Promise<void>;
}

async function adminQuery<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function createDatabase(baseUrl: string): Promise<BenchDatabase> {
  const name = `neuron_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(baseUrl, `CREATE DATABASE ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async backendTicks() {
      const rows = await adminQuery<{ pid: number }>(baseUrl, 'SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]);
      return new Map(rows.map((row) => [row.pid, cpuTicks(row.pid)]));
    },
    async drop() {
      await adminQuery(baseUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

// ---------------------------------------------------------------- the measurement

async function measure(
  setup: string,
  label: string,
  database: 'sqlite' | 'postgres',
  neurons: BenchNeuron[],
  count: number,
  warmup: number,
  backendTicks: (() => Promise<Map<number, number>>) | null,
): Promise<ComparisonRow> {
  const urls = neurons.map((n) => n.handshakeUrl);
  for (const [i, url] of urls.entries()) await driveHandshakes([url], preparePatients(warmup, `${label}-warm${i}`), 10, CLIENT_TIMEOUT_MS);
  const patients = preparePatients(count, label);

  const neuronBefore = neurons.map((n) => cpuTicks(n.pid));
  const backendsBefore = backendTicks ? await backendTicks() : null;
  const clientBefore = process.cpuUsage();
  const began = performance.now();
  const figures = batchFigures(await driveHandshakes(urls, patients, CONCURRENCY, CLIENT_TIMEOUT_MS), (performance.now() - began) / 1_000);
  const client = process.cpuUsage(clientBefore);
  const neuronTicks = neurons.reduce((sum, n, i) => sum + cpuTicks(n.pid) - neuronBefore[i]!, 0);
  let databaseTicks: number | null = null;
  if (backendTicks && backendsBefore) {
    databaseTicks = 0;
    // A backend that connected during the batch started from (about) zero.
    for (const [pid, ticks] of await backendTicks()) databaseTicks += ticks - (backendsBefore.get(pid) ?? 0);
  }
  const perHandshake = (ticks: number): number => cpuMsPer(ticks, figures.completed);
  return {
    setup,
    instances: neurons.length,
    database,
    concurrency: CONCURRENCY,
    handshakes: count,
    ...figures,
    neuronCpuMsPerHandshake: perHandshake(neuronTicks),
    databaseCpuMsPerHandshake: databaseTicks === null ? null : perHandshake(databaseTicks),
    clientCpuMsPerHandshake: (client.user + client.system) / 1_000 / Math.max(figures.completed, 1),
  };
}

// ---------------------------------------------------------------- the comparison

async function oneOnSqlite(count: number, warmup: number): Promise<ComparisonRow> {
  const dir = prepareBenchDirectory(neuronConfig(''));
  let neuron: BenchNeuron | undefined;
  try {
    // The provider row goes straight into the file the Neuron will open.
    await insertBenchProvider('', path.join(dir, 'data', 'neuron.sqlite'));
    neuron = await startBenchNeuron(dir);
    return await measure('one instance, SQLite (WAL, synchronous=FULL)', 'sqlite1', 'sqlite', [neuron], count, warmup, null);
  } finally {
    if (neuron) await stopBenchNeuron(neuron);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's version and the settings that decide what a commit costs, for the table. */
async function describeServer(url: string): Promise<string> {
  const [row] = await adminQuery<{ version: string; fsync: string; synchronous_commit: string }>(
    url,
    `SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit`,
  );
  return row ? `PostgreSQL ${row.version.split(' ')[0]}, fsync=${row.fsync}, synchronous_commit=${row.synchronous_commit}` : 'PostgreSQL';
}

async function twoOnPostgres(baseUrl: string, count: number, warmup: number): Promise<ComparisonRow> {
  const database = await createDatabase(baseUrl);
  const neurons: BenchNeuron[] = [];
  try {
    const server = await describeServer(database.url);
    await insertBenchProvider(database.url, '');
    const config = neuronConfig(database.url);
    neurons.push(await startBenchNeuron(prepareBenchDirectory(config)), await startBenchNeuron(prepareBenchDirectory(config)));
    return await measure(`two instances, ${server}`, 'postgres2', 'postgres', neurons, count, warmup, () => database.backendTicks());
  } finally {
    await Promise.all(neurons.map((n) => stopBenchNeuron(n)));
    await database.drop();
  }
}

export async function runInstanceComparison(scale: number): Promise<Comparison> {
  const count = Math.max(20, Math.round(HANDSHAKES * scale));
  const warmup = Math.max(10, Math.round(WARMUP_PER_INSTANCE * scale));
  const rows: ComparisonRow[] = [];
  const notes: string[] = [];
  process.stderr.write(`\ninstances: ${count} handshakes, concurrency ${CONCURRENCY}, one Neuron on SQLite ... `);
  rows.push(await oneOnSqlite(count, warmup));
  process.stderr.write(`${rows[0]!.perSecond.toFixed(0)}/s\n`);
  const baseUrl = process.env[POSTGRES_URL_VARIABLE] ?? '';
  if (baseUrl === '') {
    const note = `two instances on PostgreSQL NOT RUN: ${POSTGRES_URL_VARIABLE} is not set. To run it: export "$(bash scripts/postgres-test-server.sh)"`;
    notes.push(note);
    process.stderr.write(`${note}\n`);
  } else {
    process.stderr.write(`instances: ${count} handshakes, concurrency ${CONCURRENCY}, two Neurons on PostgreSQL ... `);
    const row = await twoOnPostgres(baseUrl, count, warmup);
    rows.push(row);
    process.stderr.write(`${row.perSecond.toFixed(0)}/s\n`);
  }
  for (const row of rows) if (row.failed > 0) process.stderr.write(`${row.setup}: ${row.failed} FAILED ${JSON.stringify(row.failures)}\n`);
  return { rows, notes };
}

export function comparisonTable(comparison: Comparison): string {
  const lines = [
    '| setup | client concurrency | ceiling per instance | handshakes | completed | failed | handshakes/s | p50 ms | p95 ms | p99 ms | Neuron CPU ms/handshake (all instances) | database CPU ms/handshake | client CPU ms/handshake |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of comparison.rows) {
    lines.push(
      `| ${r.setup} | ${r.concurrency} | ${CEILING_PER_INSTANCE} | ${r.handshakes} | ${r.completed} | ${r.failed} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.neuronCpuMsPerHandshake.toFixed(2)} | ${r.databaseCpuMsPerHandshake === null ? 'in process' : r.databaseCpuMsPerHandshake.toFixed(2)} | ${r.clientCpuMsPerHandshake.toFixed(2)} |`,
    );
  }
  return [...lines, ...comparison.notes.map((note) => `\n${note}`)].join('\n');
}
