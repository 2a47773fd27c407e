/**
 * Metrics about the Neuron as a service, read when Prometheus scrapes (collect()), so nothing on a
 * request's path pays for them:
 *
 * - neuron_build_info{version,node_version} 1: which build runs where;
 * - neuron_outbox_backlog / neuron_outbox_dead_letters: rows waiting for delivery and rows given
 *   up on, counted by the outbox domain (`OutboxService.deliveryCounts`, handed in by the
 *   composition root, since the foundation imports no domain);
 * - neuron_registry_heartbeat_age_seconds: seconds since the last successful registry heartbeat,
 *   from the registry status the Neuron already exposes; NaN while there has been none.
 */
import { Gauge, type Registry } from 'prom-client';

export interface ServiceMetricSources {
  version: string;
  /** The outbox's pending and dead rows, counted once per scrape. */
  outboxCounts: () => Promise<{ pending: number; dead: number }>;
  /** The last successful heartbeat (ISO time), or null when there has been none (or the registry is off). */
  lastHeartbeatAt: () => string | null;
  now?: () => number;
}

export function registerServiceMetrics(registry: Registry, sources: ServiceMetricSources): void {
  const now = sources.now ?? Date.now;
  new Gauge({
    name: 'neuron_build_info',
    help: 'Always 1; the labels say which Neuron version runs on which Node.js',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: sources.version, node_version: process.version }, 1);

  // One query per scrape serves both gauges: whichever collects first reads, the other reuses it.
  let counts: Promise<{ pending: number; dead: number }> | null = null;
  const outboxCounts = (): Promise<{ pending: number; dead: number }> => {
    counts ??= sources.outboxCounts().finally(() => setImmediate(() => (counts = null)));
    return counts;
  };
  new Gauge({
    name: 'neuron_outbox_backlog',
    help: 'Outbox rows (provider notices and webhooks) waiting for delivery',
    registers: [registry],
    async collect() {
      this.set((await outboxCounts()).pending);
    },
  });
  new Gauge({
    name: 'neuron_outbox_dead_letters',
    help: 'Outbox rows given up on after their last attempt (neuron outbox list / retry)',
    registers: [registry],
    async collect() {
      this.set((await outboxCounts()).dead);
    },
  });
  new Gauge({
    name: 'neuron_registry_heartbeat_age_seconds',
    help: 'Seconds since the last successful Axon registry heartbeat; NaN before the first (or with the registry off)',
    registers: [registry],
    collect() {
      // NaN (not 0, which would read as "just now") while there has been no heartbeat.
      const last = sources.lastHeartbeatAt();
      const at = last === null ? Number.NaN : Date.parse(last);
      this.set(Number.isFinite(at) ? Math.max(0, (now() - at) / 1_000) : Number.NaN);
    },
  });
}
