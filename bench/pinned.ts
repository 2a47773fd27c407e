/**
 * `npm run bench -- --pinned [--candidate DIR] [--baseline DIR] [--candidate-config JSON] [--baseline-config JSON]
 * [--rounds 2] [--quick]`: server CPU per new
 * handshake with the server and the load generator on separate cores, measured as issue 16 does.
 *
 * Each server runs pinned to CPU 0 (`taskset -c 0`), the load generator (bench/pinned-load.ts)
 * pinned to CPU 1; 100 clients, 4 000 new patients after 200 warm-up handshakes, handshake ceiling
 * 1000 so no client queues. Per round, in this order: this checkout's Neuron, the `--baseline`
 * checkout's Neuron when given (another worktree with its own `npm run build`, for example main
 * at an older commit), and the floor server (bench/floor-server.js at its `ed25519` level). The
 * builds alternate round by round, so a machine whose speed drifts affects them alike; only
 * figures of the same run compare. Prints one row per server and round, then the means and the
 * ratios to the baseline and to the floor. Each Neuron runs with the Node flags of its own
 * checkout's bin/neuron.js (so a changed flag there shows against the baseline); the floor with this
 * checkout's. `--candidate DIR` measures another built checkout in place of this one (to compare
 * two older commits with this checkout's bench and load generator, e.g. a feature's merge against
 * its first parent). `--candidate-config` and `--baseline-config` add top-level config sections to
 * that server's (for example `'{"storage":{"sqlite_commit_delay_ms":0}}'`; with `--baseline .` two
 * settings of one build compare in one run). BENCH_PROFILE_DIR=<dir> writes a V8 CPU profile of every Neuron process there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { PROVIDER_NPI, ROOT, SERVER_NODE_FLAGS, benchNeuronConfig, neuronNodeArgs, stopProcess, waitForHandshakeUrl } from './common.ts';
import { ONE_ADDRESS_FOR_EVERYONE } from '../stress/common.ts';

/** The issue's layout: 100 clients, 4 000 new patients, a ceiling no client reaches. */
const CLIENTS = 100;
const HANDSHAKES = 4_000;
const CEILING = 1_000;
const WARMUP_HANDSHAKES = 200;
/** The server's core and the generator's: never the same one. */
const SERVER_CPU = '0';
const LOAD_CPU = '1';

interface Measured {
  server: string;
  round: number;
  successes: number;
  cpu_ms_per_handshake: number;
  /** The part of it spent in the kernel (system calls: sockets, fsync). */
  system_ms_per_handshake: number;
  /** The part of it on the main (JavaScript) thread; the rest is V8's helper threads (garbage collection) and libuv's pool. */
  main_thread_ms_per_handshake: number;
  /** Audit entries per signed tree head over the whole run (about the handshakes per commit group); null for a build without tree heads and for the floor. */
  entries_per_tree_head: number | null;
  handshakes_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: Record<string, number>;
}

interface Running {
  child: ChildProcess;
  url: string;
  /** Read once the server has stopped, before cleanup. */
  entriesPerTreeHead: () => number | null;
  cleanup: () => void;
}

/** Audit entries per signed tree head in a stopped Neuron's database; null before tree heads existed. */
function entriesPerTreeHead(databaseFile: string): number | null {
  const database = new BetterSqlite3(databaseFile, { readonly: true });
  try {
    const { entries, heads } = database
      .prepare('SELECT (SELECT count(*) FROM audit_log) AS entries, (SELECT count(*) FROM audit_tree_heads) AS heads')
      .get() as { entries: number; heads: number };
    return heads === 0 ? null : entries / heads;
  } catch {
    return null;
  } finally {
    database.close();
  }
}

/** Top-level config sections over the bench's own, one level deep (`{"storage": {...}}` keeps the other storage settings). */
function withExtraConfig(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [section, value] of Object.entries(extra)) {
    const before = merged[section];
    merged[section] =
      typeof before === 'object' && before !== null && typeof value === 'object' && value !== null ? { ...before, ...value } : value;
  }
  return merged;
}

async function startNeuron(root: string, extraConfig: Record<string, unknown>): Promise<Running> {
  const dir = mkdtempSync(path.join(tmpdir(), 'neuron-pinned-'));
  const configFile = path.join(dir, 'neuron.config.json');
  // Every patient connects from 127.0.0.1 (see bench/run.ts).
  writeFileSync(
    configFile,
    JSON.stringify(
      withExtraConfig(
        benchNeuronConfig({ max_concurrent_handshakes: CEILING, max_pending_per_address: ONE_ADDRESS_FOR_EVERYONE }),
        extraConfig,
      ),
    ),
  );
  const child = spawn(
    'taskset',
    ['-c', SERVER_CPU, process.execPath, ...neuronNodeArgs(root), path.join(root, 'bin', 'neuron.js'), 'start', '--config', configFile],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    },
  );
  const url = await waitForHandshakeUrl(child, 60_000);
  // The Neuron has migrated its own database by now, whatever its version: the provider row goes
  // in beside it (providers are read fresh by every handshake).
  const databaseFile = path.join(dir, 'data', 'neuron.sqlite');
  const database = new BetterSqlite3(databaseFile, { timeout: 5_000 });
  const at = new Date().toISOString();
  database
    .prepare(`INSERT INTO providers (npi, name, provider_types, status, provider_endpoint, created_at, updated_at)
    VALUES (?, 'Dr. Bench', '["physician"]', 'active', 'wss://provider.example/agent', ?, ?)`)
    .run(PROVIDER_NPI, at, at);
  database.close();
  return {
    child,
    url,
    entriesPerTreeHead: () => entriesPerTreeHead(databaseFile),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function startFloor(): Promise<Running> {
  const child = spawn(
    'taskset',
    ['-c', SERVER_CPU, process.execPath, ...SERVER_NODE_FLAGS, path.join(ROOT, 'bench', 'floor-server.js'), 'ed25519'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    child.once('exit', (code) => reject(new Error(`the floor server exited with ${code}`)));
  });
  return { child, url: `ws://127.0.0.1:${port}/ws/handshake`, entriesPerTreeHead: () => null, cleanup: () => undefined };
}

async function stop(running: Running): Promise<number | null> {
  await stopProcess(running.child);
  try {
    return running.entriesPerTreeHead();
  } finally {
    running.cleanup();
  }
}

type LoadResult = Omit<Measured, 'server' | 'round' | 'entries_per_tree_head'>;

function load(url: string, pid: number, count: number, warmup: number, label: string): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'taskset',
      [
        '-c',
        LOAD_CPU,
        process.execPath,
        '--import',
        'tsx',
        path.join(ROOT, 'bench', 'pinned-load.ts'),
        '--url',
        url,
        '--pid',
        String(pid),
        '-n',
        String(count),
        '-c',
        String(CLIENTS),
        '--warmup',
        String(warmup),
        '--label',
        label,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`the load generator exited with ${code}`));
      resolve(JSON.parse(output.trim().split('\n').pop()!) as LoadResult);
    });
  });
}

async function measure(server: string, round: number, start: () => Promise<Running>, count: number, warmup: number): Promise<Measured> {
  process.stderr.write(`round ${round}, ${server}: ${count} handshakes ... `);
  const running = await start();
  let measured: LoadResult;
  try {
    // The servers' own start-up work settles before the warm-up.
    await new Promise((resolve) => setTimeout(resolve, 500));
    measured = await load(running.url, running.child.pid!, count, warmup, `${server.replace(/\W+/g, '-')}-${round}`);
  } catch (error) {
    await stop(running);
    throw error;
  }
  const result = { server, round, ...measured, entries_per_tree_head: await stop(running) };
  process.stderr.write(
    `${result.cpu_ms_per_handshake.toFixed(3)} ms CPU each (${result.system_ms_per_handshake.toFixed(3)} system), ${result.handshakes_per_s.toFixed(0)}/s\n`,
  );
  return result;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
}

function report(results: Measured[], servers: string[]): string {
  const lines = [
    '| server | round | handshakes | server CPU ms/handshake | of it system | of it main thread | handshakes/s | p50 ms | p99 ms | audit entries per tree head | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.server} | ${r.round} | ${r.successes} | ${r.cpu_ms_per_handshake.toFixed(3)} | ${r.system_ms_per_handshake.toFixed(3)} | ${r.main_thread_ms_per_handshake.toFixed(3)} | ${r.handshakes_per_s.toFixed(0)} | ${r.p50_ms.toFixed(1)} | ${r.p99_ms.toFixed(1)} | ${r.entries_per_tree_head?.toFixed(1) ?? ''} | ${JSON.stringify(r.errors)} |`,
    );
  }
  const cpuOf = (server: string): number => mean(results.filter((r) => r.server === server).map((r) => r.cpu_ms_per_handshake));
  lines.push('', '| server | mean CPU ms/handshake | mean handshakes/s | × floor | × baseline |', '|---|---:|---:|---:|---:|');
  for (const server of servers) {
    const cpu = cpuOf(server);
    const rate = mean(results.filter((r) => r.server === server).map((r) => r.handshakes_per_s));
    const vsBaseline = servers.includes('baseline') ? (cpu / cpuOf('baseline')).toFixed(2) : '';
    lines.push(`| ${server} | ${cpu.toFixed(3)} | ${rate.toFixed(0)} | ${(cpu / cpuOf('floor')).toFixed(2)} | ${vsBaseline} |`);
  }
  return lines.join('\n');
}

export async function runPinned(args: string[]): Promise<void> {
  const baselineAt = args.indexOf('--baseline');
  const baseline = baselineAt >= 0 ? path.resolve(args[baselineAt + 1] ?? '') : null;
  const candidateAt = args.indexOf('--candidate');
  const candidate = candidateAt >= 0 ? path.resolve(args[candidateAt + 1] ?? '') : ROOT;
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 2;
  const scale = args.includes('--quick') ? 0.1 : 1;
  const configOf = (flag: string): Record<string, unknown> => {
    const at = args.indexOf(flag);
    return at >= 0 ? (JSON.parse(args[at + 1] ?? '{}') as Record<string, unknown>) : {};
  };
  const candidateConfig = configOf('--candidate-config');
  const baselineConfig = configOf('--baseline-config');
  const count = Math.round(HANDSHAKES * scale);
  const warmup = Math.round(WARMUP_HANDSHAKES * scale);
  const contenders: Array<[string, () => Promise<Running>]> = [
    [candidate === ROOT ? 'this checkout' : 'candidate', () => startNeuron(candidate, candidateConfig)],
    ...(baseline === null ? [] : [['baseline', () => startNeuron(baseline, baselineConfig)] as [string, () => Promise<Running>]]),
    ['floor', startFloor],
  ];
  const results: Measured[] = [];
  for (let round = 1; round <= rounds; round += 1) {
    for (const [server, start] of contenders) results.push(await measure(server, round, start, count, warmup));
  }
  process.stdout.write(
    `\nPinned: servers on CPU ${SERVER_CPU}, load generator on CPU ${LOAD_CPU}, ${CLIENTS} clients, ceiling ${CEILING}, Node ${process.version}${baseline === null ? '' : `, baseline ${baseline}`}\n\n`,
  );
  process.stdout.write(
    `${report(
      results,
      contenders.map(([server]) => server),
    )}\n`,
  );
  if (results.some((r) => Object.keys(r.errors).length > 0)) process.exitCode = 1;
}
