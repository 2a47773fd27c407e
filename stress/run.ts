/**
 * `npm run stress`: the hardening run. Each phase starts its own Neuron as its own process
 * (`node bin/neuron.js start`, embedded SQLite with its default durability) on a fresh data
 * directory, drives it from this process over 127.0.0.1, and checks what it must never do:
 *
 *   fuzz    10 000+ seeded hostile handshake cases (test/hardening/fuzz.ts): each answered with
 *           a coded error and a close, the process up, nothing written but the failure audit
 *   idle    thousands of connections that never send or stop after the challenge: each closed
 *           at its deadline, memory back near baseline, legitimate patients completing meanwhile
 *   flood   20 000 upgrade attempts at the default limits: answered 101 or 503 + Retry-After,
 *           nobody hangs, memory bounded by the queue limit, /health/live p99 within 100 ms
 *   crash   SIGKILL under load and restart, three times (test/hardening/crash.ts)
 *   sync    handshake throughput with storage.sqlite_synchronous FULL against NORMAL
 *
 * Prints a table (stdout) and exits non-zero when a check or a target fails.
 * Options: --quick (smaller numbers, for a smoke run), --only <phase,...>, --json <file>.
 * FUZZ_SEED=<n> repeats a fuzz run (and the crash plan); the seed is printed either way.
 * Linux only (reads /proc). Keep the whole run within about five minutes on two cores.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { runCrashScenario, type CrashReport } from '../test/hardening/crash.ts';
import { randomSeed, seedFromEnv } from '../test/hardening/fuzz.ts';
import { HEAP_SLACK_KB, mb, ms, say, type Memory } from './common.ts';
import { floodPhase, type FloodPhaseResult } from './flood.ts';
import { fuzzPhase, type FuzzPhaseResult } from './fuzz.ts';
import { idlePhase, type IdlePhaseResult } from './idle.ts';
import { syncPhase, type SyncRun } from './sync.ts';

/** The /health/live latency target during the flood. */
const HEALTH_P99_TARGET_MS = 100;

const PHASES = ['fuzz', 'idle', 'flood', 'crash', 'sync'] as const;
type Phase = (typeof PHASES)[number];

interface Results {
  seed: number;
  fuzz?: FuzzPhaseResult;
  idle?: IdlePhaseResult;
  flood?: FloodPhaseResult;
  crash?: CrashReport;
  sync?: SyncRun[];
  failures: string[];
  seconds: number;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** "baseline / peak / after" RSS and the heap after a full GC, with the verdict on the heap. */
function memoryRow(m: Memory, extra = ''): [string, boolean] {
  const ok = m.heapKb.after <= m.heapKb.baseline + HEAP_SLACK_KB;
  return [
    `RSS ${mb(m.rssKb.baseline)} / ${mb(m.rssKb.peak)} / ${mb(m.rssKb.after)} MB; heap in use after a full GC ${mb(m.heapKb.baseline)} -> ${mb(m.heapKb.after)} MB${extra}`,
    ok,
  ];
}

function table(r: Results): string {
  const rows: Array<[string, string, string]> = [];
  const verdict = (ok: boolean): string => (ok ? 'ok' : '**FAIL**');
  if (r.fuzz) {
    const f = r.fuzz;
    rows.push([
      'fuzz cases run / passed',
      `${f.cases} / ${f.passed} (seed ${f.seed}, ${f.families} families, ${f.seconds.toFixed(1)} s; failure audits caught up ${f.auditLagSeconds.toFixed(1)} s after the last case)`,
      verdict(f.problems.length === 0),
    ]);
    rows.push([
      'fuzz: rows written besides handshake.failed',
      f.problems.some((p) => /written|audit/.test(p)) ? 'some' : 'none (relationships, directory, outbox, audit counted before/after)',
      verdict(!f.problems.some((p) => /written|audit/.test(p))),
    ]);
    const [text, ok] = memoryRow(f.memory);
    rows.push(['fuzz: Neuron memory baseline / peak / after', text, verdict(ok)]);
  }
  if (r.idle) {
    const i = r.idle;
    const perWave = i.silent + i.stoppers;
    const total = perWave * i.waves;
    rows.push([
      'idle connections closed at deadline',
      `${i.closedAtDeadline} / ${total} (${i.waves} waves of ${i.silent} silent + ${i.stoppers} stopped after the challenge; deadline ${i.deadlineMs} ms; closed +${ms(i.overshootP50)} ms p50, +${ms(i.overshootP99)} ms p99 after it; early ${i.early}, late ${i.late}, wrong answer ${i.wrongAnswer})`,
      verdict(i.early === 0 && i.wrongAnswer === 0 && i.late === 0),
    ]);
    rows.push([
      'idle: legitimate handshakes meanwhile',
      `${i.legitCompleted} completed, ${i.legitFailed} failed; p50 ${ms(i.legitP50)} ms, p99 ${ms(i.legitP99)} ms`,
      verdict(i.legitFailed === 0 && i.legitCompleted > 0),
    ]);
    const [text, ok] = memoryRow(
      i.memory,
      ` (RSS peak per wave ${i.wavePeaksKb.map(mb).join(', ')} MB; about ${((i.wavePeaksKb[0]! - i.memory.rssKb.baseline) / perWave).toFixed(1)} KiB per open idle connection)`,
    );
    rows.push(['idle: Neuron memory baseline / peak / after', text, verdict(ok)]);
  }
  if (r.flood) {
    const f = r.flood;
    rows.push([
      'flood: upgrade attempts',
      `${f.attempts} in ${f.launchSeconds.toFixed(1)} s; all answered within ${f.seconds.toFixed(1)} s`,
      verdict(f.hung === 0),
    ]);
    rows.push([
      'flood: answers',
      `101 admitted ${f.admitted} (held their slot until AUTH_TIMEOUT); 503 HANDSHAKE_QUEUE_FULL ${f.queueFull}; 503 HANDSHAKE_QUEUE_TIMEOUT ${f.queueTimeout}; 503 without Retry-After ${f.missingRetryAfter}; hung ${f.hung}${Object.keys(f.other).length > 0 ? `; other ${JSON.stringify(f.other)}` : ''}`,
      verdict(f.problems.length === 0),
    ]);
    rows.push([
      'flood 503 count',
      `${f.queueFull + f.queueTimeout} (every one with Retry-After: ${f.missingRetryAfter === 0 ? 'yes' : 'no'})`,
      verdict(f.missingRetryAfter === 0),
    ]);
    const [text, ok] = memoryRow(
      f.memory,
      ` (queue limit ${f.maxQueued}: about ${((f.memory.rssKb.peak - f.memory.rssKb.baseline) / f.maxQueued).toFixed(1)} KiB per queued upgrade at the peak)`,
    );
    rows.push(['flood: Neuron memory baseline / peak / after', text, verdict(ok)]);
    rows.push([
      '/health/live during the flood p50 / p99 / max',
      `${ms(f.health.p50)} / ${ms(f.health.p99)} / ${ms(f.health.max)} ms over ${f.health.samples} requests, ${f.health.failures} failed (target p99 <= ${HEALTH_P99_TARGET_MS} ms)`,
      verdict(f.health.p99 <= HEALTH_P99_TARGET_MS && f.health.failures === 0),
    ]);
    rows.push([
      'flood: legitimate patients honouring Retry-After',
      `${f.legit.completed} / ${f.legit.patients} completed; at most ${f.legit.attemptsMax} attempts, ${f.legit.secondsMax.toFixed(1)} s`,
      verdict(f.legit.completed === f.legit.patients),
    ]);
  }
  if (r.crash) {
    const c = r.crash;
    rows.push([
      'crash-restart',
      `${c.cycles} SIGKILLs under load: ${c.acknowledged} confirmed relationships all present, ${c.cutOff} handshakes cut off (${c.cutOffCommitted} of them committed whole, the rest left nothing), ${c.relationships} relationships; ${c.pendingAtLastKill} notices pending at the last kill, ${c.noticesReceived}/${c.relationships} delivered after the restart (${c.duplicateDeliveries} duplicates, ${c.badSignatures} bad signatures); audit verify ${c.auditVerify.every((l) => l.includes('exit 0')) ? 'passed' : 'FAILED'} ${c.auditVerify.length}x; ${c.seconds.toFixed(0)} s`,
      verdict(c.problems.length === 0),
    ]);
  }
  if (r.sync) {
    const full = r.sync.filter((s) => s.mode === 'FULL');
    const normal = r.sync.filter((s) => s.mode === 'NORMAL');
    const f = mean(full.map((s) => s.perSecond));
    const n = mean(normal.map((s) => s.perSecond));
    rows.push([
      'sqlite_synchronous FULL vs NORMAL',
      `${f.toFixed(0)} vs ${n.toFixed(0)} handshakes/s (FULL costs ${((1 - f / n) * 100).toFixed(0)}%); p50 ${ms(mean(full.map((s) => s.p50)))} vs ${ms(mean(normal.map((s) => s.p50)))} ms`,
      '',
    ]);
  }
  const lines = ['| check | result | |', '|---|---|---|', ...rows.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`)];
  return lines.join('\n');
}

function machine(): string {
  const cpu = cpus();
  return `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ${process.platform} ${process.arch}`;
}

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('the stress run reads /proc and runs on Linux only');
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',')) : null;
  const jsonAt = args.indexOf('--json');
  const phases = PHASES.filter((p) => only === null || only.has(p));
  const seed = seedFromEnv(randomSeed());
  const results: Results = { seed, failures: [], seconds: 0 };
  const began = performance.now();
  say(`stress run, seed ${seed}${quick ? ' (quick)' : ''}: ${phases.join(', ')}`);

  const run = async (phase: Phase, work: () => Promise<void>): Promise<void> => {
    const start = performance.now();
    try {
      await work();
    } catch (error) {
      results.failures.push(`${phase}: ${(error as Error).stack ?? String(error)}`);
    }
    say(`${phase} done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  };
  for (const phase of phases) {
    if (phase === 'fuzz') {
      await run(phase, async () => {
        results.fuzz = await fuzzPhase({ seed, cases: quick ? 2_000 : 10_000, concurrency: 64 });
        results.failures.push(...results.fuzz.problems.map((p) => `fuzz: ${p}`));
      });
    } else if (phase === 'idle') {
      await run(phase, async () => {
        results.idle = await idlePhase({
          silent: quick ? 600 : 3_000,
          stoppers: quick ? 200 : 1_000,
          waves: 2,
          deadlineMs: 2_000,
          ceiling: 5_000,
        });
        results.failures.push(...results.idle.problems.map((p) => `idle: ${p}`));
        if (results.idle.late > 0)
          results.failures.push(`idle: ${results.idle.late} connections closed more than a second after their deadline`);
        if (!memoryRow(results.idle.memory)[1]) results.failures.push('idle: the heap did not return near its baseline');
      });
    } else if (phase === 'flood') {
      await run(phase, async () => {
        results.flood = await floodPhase({ attempts: quick ? 12_000 : 20_000, legitPatients: 5 });
        results.failures.push(...results.flood.problems.map((p) => `flood: ${p}`));
        if (!(results.flood.health.p99 <= HEALTH_P99_TARGET_MS))
          results.failures.push(`flood: /health/live p99 ${ms(results.flood.health.p99)} ms over the ${HEALTH_P99_TARGET_MS} ms target`);
        if (results.flood.legit.completed !== results.flood.legit.patients)
          results.failures.push('flood: a legitimate patient never got in');
        if (!memoryRow(results.flood.memory)[1]) results.failures.push('flood: the heap did not return near its baseline');
      });
    } else if (phase === 'crash') {
      await run(phase, async () => {
        results.crash = await runCrashScenario({
          seed,
          cycles: quick ? 1 : 3,
          workers: 8,
          ceiling: 16,
          killAfter: [60, 200],
          deliveryTimeoutMs: 60_000,
          log: say,
        });
        results.failures.push(...results.crash.problems.map((p) => `crash: ${p}`));
      });
    } else {
      await run(phase, async () => {
        results.sync = await syncPhase({ handshakes: quick ? 500 : 1_500, concurrency: 16, rounds: 2 });
      });
    }
  }
  results.seconds = (performance.now() - began) / 1000;

  process.stdout.write(`\nMachine: ${machine()}\n`);
  process.stdout.write(
    `Server: one Neuron process per phase (node bin/neuron.js start), embedded SQLite (WAL, synchronous=FULL unless noted); clients: this process over 127.0.0.1. Seed ${seed}. ${results.seconds.toFixed(0)} s in all.\n\n`,
  );
  process.stdout.write(`${table(results)}\n`);
  if (results.failures.length > 0) {
    process.stdout.write(
      `\n${results.failures.length} failed check(s) (FUZZ_SEED=${seed} repeats the run):\n${results.failures.map((f) => `- ${f}`).join('\n')}\n`,
    );
    process.exitCode = 1;
  }
  if (jsonAt >= 0 && args[jsonAt + 1]) writeFileSync(args[jsonAt + 1]!, JSON.stringify({ machine: machine(), ...results }, null, 2));
}

await main();
