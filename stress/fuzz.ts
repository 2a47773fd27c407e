/**
 * Stress phase 1: 10 000+ hostile handshake cases (test/hardening/fuzz.ts) through real
 * connections to a Neuron process, then the checks: every case answered as expected, the process
 * still up and serving, nothing written but one handshake.failed audit entry per case.
 */
import BetterSqlite3 from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKit, describeFailures, generateCases, runCases, tallyAudit, ROW_COUNT_SQL, type RowCounts } from '../test/hardening/fuzz.ts';
import { PROVIDER_NPI, RssSampler, handshake, newPatient, say, startServer, type Memory } from './common.ts';

export interface FuzzPhaseResult {
  seed: number;
  cases: number;
  passed: number;
  seconds: number;
  /** Seconds after the last case until every failure audit entry was written. */
  auditLagSeconds: number;
  problems: string[];
  memory: Memory;
  families: number;
}

function readCounts(file: string): { counts: RowCounts; lastSeq: number } {
  const db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  try {
    const counts = db.prepare(ROW_COUNT_SQL).get() as RowCounts;
    const lastSeq = (db.prepare('SELECT coalesce(max(seq), 0) AS seq FROM audit_log').get() as { seq: number }).seq;
    return { counts, lastSeq };
  } finally {
    db.close();
  }
}

export async function fuzzPhase(options: { seed: number; cases: number; concurrency: number }): Promise<FuzzPhaseResult> {
  // The ceiling raised so the run measures the Neuron's answers, not the queue.
  const server = await startServer({ handshake: { max_concurrent_handshakes: 256 } }, { inspect: true });
  const problems: string[] = [];
  try {
    const sampler = new RssSampler(server.neuron.pid);
    await handshake(server.neuron.handshakeUrl, newPatient('fuzz-warm'));
    const baseline = await server.collectGarbage();
    const kit = createKit(options.seed, { providerNpi: PROVIDER_NPI, maxMessageBytes: 64 * 1024 });
    const cases = generateCases(kit, options.cases);
    const before = readCounts(server.sqliteFile);
    sampler.start();
    say(`fuzz: ${cases.length} cases, seed ${options.seed} (FUZZ_SEED=${options.seed} to repeat)`);
    const summary = await runCases(server.neuron.handshakeUrl, kit, cases, {
      concurrency: options.concurrency,
      caseTimeoutMs: 30_000,
      onProgress: (done) => {
        if (done % 2_500 === 0) say(`  ${done} cases`);
      },
    });
    const ended = performance.now();
    if (summary.failed.length > 0) problems.push(describeFailures(summary, 20));

    // Each case's failure audit is written after its answer; wait for the last of them.
    let after = readCounts(server.sqliteFile);
    const deadline = Date.now() + 60_000;
    while (after.counts.auditFailed - before.counts.auditFailed < summary.cases && Date.now() < deadline) {
      await sleep(100);
      after = readCounts(server.sqliteFile);
    }
    const auditLagSeconds = (performance.now() - ended) / 1000;
    sampler.stop();
    if (server.neuron.child.exitCode !== null || server.neuron.child.signalCode !== null)
      problems.push(`the Neuron process exited: ${server.neuron.output().slice(-2_000)}`);
    const live = await fetch(`${server.neuron.url}/health/live`).then(
      (r) => r.status,
      () => 0,
    );
    if (live !== 200) problems.push(`/health/live answered ${live} after the fuzz run`);
    const db = new BetterSqlite3(server.sqliteFile, { readonly: true, fileMustExist: true });
    let tally: ReturnType<typeof tallyAudit>;
    try {
      tally = tallyAudit(
        db.prepare('SELECT event_type AS type, details FROM audit_log WHERE seq > ? ORDER BY seq').all(before.lastSeq) as Array<{
          type: string;
          details: string;
        }>,
      );
    } finally {
      db.close();
    }
    if (after.counts.relationships !== before.counts.relationships)
      problems.push(`${after.counts.relationships - before.counts.relationships} relationships written`);
    if (after.counts.patients !== before.counts.patients)
      problems.push(`${after.counts.patients - before.counts.patients} directory entries written`);
    if (after.counts.outbox !== before.counts.outbox) problems.push(`${after.counts.outbox - before.counts.outbox} outbox rows written`);
    const otherTypes = Object.entries(tally.types).filter(([type]) => type !== 'handshake.failed');
    if (otherTypes.length > 0)
      problems.push(`audit entries other than handshake.failed: ${JSON.stringify(Object.fromEntries(otherTypes))}`);
    if ((tally.types['handshake.failed'] ?? 0) !== summary.cases)
      problems.push(`${tally.types['handshake.failed'] ?? 0} handshake.failed entries for ${summary.cases} cases`);
    if (JSON.stringify(Object.entries(tally.failedCodes).sort()) !== JSON.stringify(Object.entries(summary.expectedAudit).sort())) {
      problems.push(
        `audited codes ${JSON.stringify(tally.failedCodes)} differ from what the clients saw ${JSON.stringify(summary.expectedAudit)}`,
      );
    }
    // And it still completes a real handshake.
    const result = await handshake(server.neuron.handshakeUrl, newPatient('after-fuzz')).catch((error: Error) => error);
    if (result instanceof Error) problems.push(`a legitimate handshake after the fuzz run failed: ${result.message}`);
    const afterGc = await server.collectGarbage();
    return {
      seed: options.seed,
      cases: summary.cases,
      passed: summary.passed,
      seconds: summary.seconds,
      auditLagSeconds,
      problems,
      memory: {
        rssKb: { baseline: baseline.rssKb, peak: sampler.peakKb, after: afterGc.rssKb },
        heapKb: { baseline: baseline.heapUsedKb, after: afterGc.heapUsedKb },
      },
      families: Object.keys(summary.byFamily).length,
    };
  } finally {
    await server.stop();
  }
}
