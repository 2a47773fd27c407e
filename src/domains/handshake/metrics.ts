/**
 * Handshake metrics on the Neuron's own prom-client registry (docs/handshake.md lists them).
 * Gauges are read from the admission state when scraped, so the hot path only counts and observes.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Seconds; a handshake is a few milliseconds locally and up to ~40 s with a slow patient (auth + challenge timeouts). */
const DURATION_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds; the queue timeout defaults to 30 s. */
const QUEUE_WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60];

export interface HandshakeMetrics {
  /** One per handshake or refused upgrade; outcome is `new`, `existing`, `abandoned` or a catalogue code. */
  outcome(outcome: string): void;
  /** Time from admission to the terminal state; outcome is `completed` or `failed`. */
  duration(outcome: 'completed' | 'failed', seconds: number): void;
  /** Time an admitted upgrade spent in the queue (0 when admitted at once). */
  queueWait(seconds: number): void;
}

export function createHandshakeMetrics(registry: Registry, sample: { active: () => number; queued: () => number }): HandshakeMetrics {
  const total = new Counter({
    name: 'neuron_handshakes_total',
    help: 'Handshakes by outcome: new, existing, abandoned (client left), or the error code (refused upgrades included)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'neuron_handshake_duration_seconds',
    help: 'Time from WebSocket admission to the end of the handshake',
    // `outcome`, the one label name for outcomes across the Neuron's metrics.
    labelNames: ['outcome'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'neuron_handshakes_active',
    help: 'Handshakes holding an admission slot',
    registers: [registry],
    collect() {
      this.set(sample.active());
    },
  });
  new Gauge({
    name: 'neuron_handshakes_queued',
    help: 'Upgrades waiting for an admission slot',
    registers: [registry],
    collect() {
      this.set(sample.queued());
    },
  });
  const wait = new Histogram({
    name: 'neuron_handshake_queue_wait_seconds',
    help: 'Time an upgrade waited for an admission slot before it was admitted',
    buckets: QUEUE_WAIT_BUCKETS,
    registers: [registry],
  });
  // Children bound to their label once, so an observation builds no label object. Outcomes are
  // the catalogue's codes and a few words, so this map stays as small as the catalogue.
  const totalByOutcome = new Map<string, Counter.Internal>();
  const durationByOutcome = { completed: duration.labels('completed'), failed: duration.labels('failed') };
  return {
    outcome: (outcome) => {
      let child = totalByOutcome.get(outcome);
      if (child === undefined) {
        child = total.labels(outcome);
        totalByOutcome.set(outcome, child);
      }
      child.inc();
    },
    duration: (outcome, seconds) => durationByOutcome[outcome].observe(seconds),
    queueWait: (seconds) => wait.observe(seconds),
  };
}
