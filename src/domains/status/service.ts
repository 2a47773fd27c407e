/**
 * What the Neuron is doing right now, for `GET /v1/status`. The parts other components own come
 * in as functions, so this module depends on none of them:
 *
 * - handshakes: by default read from the handshake broker's gauges in the metrics registry
 *   (`neuron_handshakes_active`, `neuron_handshakes_queued`); null when no broker registered them;
 * - registry: a summary function (the registry service's status()); until one is wired the state
 *   is `disabled` when registry.enabled is false and `unknown` otherwise.
 */
import type { Registry } from 'prom-client';
import type { Storage } from '../../foundation/storage/index.ts';
import type { OutboxBacklog, OutboxService } from '../outbox/index.ts';
import { handshakesPerDay, type HandshakeDay } from './handshake-stats.ts';

export interface HandshakeLoad {
  active: number;
  queued: number;
}

export interface RegistrySummary {
  /** unregistered, registering, registered, invalid, disabled, or unknown when no source is wired. */
  state: string;
  registered: boolean;
  lastHeartbeatAt: string | null;
}

export interface StatusSources {
  version: string;
  startedAt: () => Date | null;
  handshakes?: () => Promise<HandshakeLoad | null> | HandshakeLoad | null;
  registry?: () => RegistrySummary;
}

export interface StatusReport {
  version: string;
  started_at: string | null;
  uptime_seconds: number;
  handshakes: { active: number | null; queued: number | null };
  registry: { state: string; registered: boolean; last_heartbeat_at: string | null };
  outbox: OutboxBacklog;
}

async function gaugeValue(metrics: Registry, name: string): Promise<number | null> {
  const metric = metrics.getSingleMetric(name);
  if (!metric) return null;
  const data = await metric.get();
  const value = data.values[0]?.value;
  return typeof value === 'number' ? value : null;
}

/** The handshake load as the broker's gauges report it, or null when there is no broker. */
export function handshakesFromMetrics(metrics: Registry): () => Promise<HandshakeLoad | null> {
  return async () => {
    const active = await gaugeValue(metrics, 'neuron_handshakes_active');
    const queued = await gaugeValue(metrics, 'neuron_handshakes_queued');
    return active === null || queued === null ? null : { active, queued };
  };
}

export interface StatusServiceOptions {
  /** Read for the handshakes per day (counted from the audit log's handshake entries). */
  storage: Storage;
  /** Asked for its backlog; the outbox's table is its own. */
  outbox: Pick<OutboxService, 'backlog'>;
  sources: Required<StatusSources>;
}

/** What `/v1/status` and `/v1/stats/handshakes` answer, from the parts that own each figure. */
export class StatusService {
  readonly #options: StatusServiceOptions;

  constructor(options: StatusServiceOptions) {
    this.#options = options;
  }

  async report(now: number = Date.now()): Promise<StatusReport> {
    const { sources, outbox } = this.#options;
    const startedAt = sources.startedAt();
    const load = await sources.handshakes();
    const registry = sources.registry();
    return {
      version: sources.version,
      started_at: startedAt?.toISOString() ?? null,
      uptime_seconds: startedAt === null ? 0 : Math.max(0, Math.floor((now - startedAt.getTime()) / 1000)),
      handshakes: { active: load?.active ?? null, queued: load?.queued ?? null },
      registry: { state: registry.state, registered: registry.registered, last_heartbeat_at: registry.lastHeartbeatAt },
      outbox: await outbox.backlog(),
    };
  }

  /** Every UTC day from `days - 1` days ago to today, oldest first, zeros included. */
  handshakesPerDay(days: number, now: number): Promise<HandshakeDay[]> {
    return handshakesPerDay(this.#options.storage.db, days, now);
  }
}
