/**
 * Stress phase 5: the price of durable commits. The same batch of new-patient handshakes against
 * a Neuron with storage.sqlite_synchronous FULL (the default: the WAL is synced at every commit)
 * and NORMAL (synced at checkpoints only; a power cut can lose the last commits), alternating so
 * that drift in the machine's load affects both alike.
 */
import { handshake, newPatient, percentile, say, startServer } from './common.ts';

export interface SyncRun {
  mode: 'FULL' | 'NORMAL';
  perSecond: number;
  p50: number;
  p99: number;
}

async function measure(mode: 'FULL' | 'NORMAL', handshakes: number, concurrency: number): Promise<SyncRun> {
  const server = await startServer({ storage: { sqlite_synchronous: mode }, handshake: { max_concurrent_handshakes: concurrency } });
  try {
    const url = server.neuron.handshakeUrl;
    for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: concurrency }, () => handshake(url, newPatient('sync-warm'))));
    const patients = Array.from({ length: handshakes }, () => newPatient(`sync-${mode}`));
    const latencies: number[] = [];
    let next = 0;
    const began = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < patients.length) {
          const patient = patients[next++]!;
          const start = performance.now();
          await handshake(url, patient);
          latencies.push(performance.now() - start);
        }
      }),
    );
    const seconds = (performance.now() - began) / 1000;
    return { mode, perSecond: handshakes / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } finally {
    await server.stop();
  }
}

export async function syncPhase(options: { handshakes: number; concurrency: number; rounds: number }): Promise<SyncRun[]> {
  say(
    `sync: ${options.handshakes} new-patient handshakes per run, concurrency ${options.concurrency}, FULL and NORMAL x ${options.rounds}`,
  );
  const runs: SyncRun[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const mode of round % 2 === 0 ? (['FULL', 'NORMAL'] as const) : (['NORMAL', 'FULL'] as const)) {
      const run = await measure(mode, options.handshakes, options.concurrency);
      say(`  ${mode}: ${run.perSecond.toFixed(0)} handshakes/s`);
      runs.push(run);
    }
  }
  return runs;
}
