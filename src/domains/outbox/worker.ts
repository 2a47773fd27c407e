/**
 * The outbox delivery worker. Every instance sharing the database runs one; leases keep them from
 * delivering the same row at the same time (see ./store.ts).
 *
 * - Up to `outbox.batch_size` deliveries are in flight at once, and at most one per target, so a
 *   slow or hanging receiver holds one slot (until `outbox.request_timeout_ms`) and never the
 *   others, and a receiver that is down is not hammered by its own backlog.
 * - Free slots are refilled every `outbox.poll_interval_ms`, at once after each delivery, and on
 *   `nudge()` (called after a commit that enqueued something).
 * - A POST is delivered on a 2xx answer. Anything else (another status, a redirect, which is never
 *   followed, a timeout, a refused connection) is a failed attempt, retried with exponential
 *   backoff and full jitter until `outbox.max_attempts`, then the row is a dead letter.
 * - Stopping aborts requests in flight and gives their rows back without spending an attempt, so
 *   the next start (of this or another instance) delivers them. Delivery is at least once:
 *   receivers drop duplicates by event id.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';
import type { NeuronConfig } from '../../foundation/config/index.ts';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import { outboundRefusal, OUTBOUND_REFUSED_CODE, retryDelayMs, type OutboundClient } from '../../foundation/outbound/index.ts';
import type { ResolverMap } from './resolvers.ts';
import { HEADER } from './signing.ts';
import { claimDue, markDelivered, markFailed, releaseClaim, type OutboxRow } from './store.ts';

export type OutboxSettings = NeuronConfig['outbox'];

export interface OutboxWorkerOptions {
  storage: Storage;
  /** Lease holder id: the Neuron's instance id. */
  instanceId: string;
  settings: OutboxSettings;
  /** The HTTP client every delivery goes through: it enforces the outbound policy (src/foundation/outbound/). */
  outbound: OutboundClient;
  /** Where a delivery the outbound policy refused is recorded (`outbox.refused`). */
  audit: AuditLog;
  resolvers: ResolverMap;
  logger: Logger;
  metrics?: Registry;
  /** User-Agent sent with every delivery. */
  userAgent: string;
  /** Source of jitter in [0, 1). */
  random?: () => number;
}

export type DeliveryOutcome = 'delivered' | 'retry' | 'dead' | 'held' | 'released' | 'lost_lease';

/**
 * Extra lease time beyond the request timeout, for resolving the target and writing the outcome:
 * a lease shorter than one delivery would let a second worker start the same delivery while the
 * first is still waiting for its answer.
 */
const LEASE_SLACK_MS = 5_000;
/** Longest error text kept in `last_error` (a receiver's status line, a socket error). */
const MAX_ERROR_CHARS = 300;

export class OutboxWorker {
  readonly #options: OutboxWorkerOptions;
  readonly #settings: OutboxSettings;
  readonly #leaseMs: number;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #inFlight = new Map<number, { target: string; done: Promise<void> }>();
  readonly #busyTargets = new Map<string, number>();
  readonly #outcomes: Counter<'kind' | 'outcome'> | null;
  readonly #inFlightGauge: Gauge | null;
  #abort = new AbortController();
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #again = false;

  constructor(options: OutboxWorkerOptions) {
    this.#options = options;
    this.#settings = options.settings;
    this.#leaseMs = Math.max(options.settings.lease_ms, options.settings.request_timeout_ms + LEASE_SLACK_MS);
    this.#random = options.random ?? Math.random;
    this.#log = options.logger.child({ component: 'outbox' });
    if (options.metrics) {
      this.#outcomes = new Counter({
        name: 'neuron_outbox_deliveries_total',
        help: 'Outbox delivery attempts by kind and outcome',
        labelNames: ['kind', 'outcome'],
        registers: [options.metrics],
      });
      this.#inFlightGauge = new Gauge({
        name: 'neuron_outbox_in_flight',
        help: 'Outbox deliveries in progress in this instance',
        registers: [options.metrics],
      });
    } else {
      this.#outcomes = null;
      this.#inFlightGauge = null;
    }
    if (options.settings.lease_ms < options.settings.request_timeout_ms + LEASE_SLACK_MS) {
      this.#log.debug({ lease_ms: this.#leaseMs }, 'outbox lease extended to outlast one delivery');
    }
  }

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.nudge();
  }

  /** Looks for due rows now instead of at the next poll (cheap; calls coalesce). */
  nudge(): void {
    if (!this.#running) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  /** Stops claiming, aborts deliveries in flight and gives their rows back. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#abort.abort();
    await this.#ticking;
    await Promise.allSettled([...this.#inFlight.values()].map((entry) => entry.done));
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = null;
        if (this.#again) {
          this.#again = false;
          this.#schedule(0);
        }
      });
    }, delayMs);
  }

  async #tick(): Promise<void> {
    try {
      const free = this.#settings.batch_size - this.#inFlight.size;
      if (free > 0) {
        const now = Date.now();
        const rows = await claimDue(this.#options.storage, {
          instanceId: this.#options.instanceId,
          now: isoNow(now),
          leaseUntil: isoNow(now + this.#leaseMs),
          limit: free,
          busyTargets: new Set(this.#busyTargets.keys()),
        });
        for (const row of rows) this.#launch(row);
        // A full claim suggests more rows are due: look again as soon as this tick ends.
        if (rows.length === free) this.#again = true;
      }
    } catch (error) {
      if (this.#running) this.#log.error({ err: error }, 'could not claim outbox rows; retrying at the next poll');
    }
    if (this.#running && !this.#again) this.#schedule(this.#settings.poll_interval_ms);
  }

  #launch(row: OutboxRow): void {
    this.#busyTargets.set(row.target, (this.#busyTargets.get(row.target) ?? 0) + 1);
    const done = this.#deliver(row)
      .then((outcome) => {
        this.#outcomes?.inc({ kind: row.kind, outcome });
      })
      .catch((error: unknown) => {
        this.#log.error(
          { err: error, event_id: row.event_id },
          'outbox delivery failed unexpectedly; the lease will expire and the row be retried',
        );
      })
      .finally(() => {
        this.#inFlight.delete(row.seq);
        const left = (this.#busyTargets.get(row.target) ?? 1) - 1;
        if (left <= 0) this.#busyTargets.delete(row.target);
        else this.#busyTargets.set(row.target, left);
        this.#inFlightGauge?.set(this.#inFlight.size);
        this.nudge();
      });
    this.#inFlight.set(row.seq, { target: row.target, done });
    this.#inFlightGauge?.set(this.#inFlight.size);
  }

  async #deliver(row: OutboxRow): Promise<DeliveryOutcome> {
    const { storage, instanceId } = this.#options;
    const db = storage.db;
    const resolver = this.#options.resolvers[row.kind];
    if (!resolver) {
      const reason = `no delivery is defined for outbox kind "${row.kind}"`;
      return (await markFailed(db, row.seq, instanceId, reason, null)) ? 'dead' : 'lost_lease';
    }
    const plan = await resolver(row, { db, now: Date.now(), holdMs: this.#settings.backoff_max_ms });
    if (plan.action === 'hold') {
      return (await releaseClaim(db, row.seq, instanceId, plan.until, plan.reason)) ? 'held' : 'lost_lease';
    }
    if (plan.action === 'dead') {
      this.#log.warn({ event_id: row.event_id, kind: row.kind, reason: plan.reason }, 'outbox notice is a dead letter');
      return (await markFailed(db, row.seq, instanceId, plan.reason, null)) ? 'dead' : 'lost_lease';
    }

    let failure: string;
    try {
      const response = await this.#options.outbound.fetch(plan.url, {
        method: 'POST',
        body: row.body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.#settings.request_timeout_ms), this.#abort.signal]),
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'User-Agent': this.#options.userAgent,
          [HEADER.eventId]: row.event_id,
          [HEADER.eventType]: row.event_type,
          [HEADER.attempt]: String(row.attempts),
          ...plan.headers,
        },
      });
      // The answer's body is not needed; discarding it frees the connection.
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) {
        const recorded = await markDelivered(db, row.seq, instanceId, isoNow());
        if (recorded) this.#log.debug({ event_id: row.event_id, kind: row.kind, attempts: row.attempts }, 'outbox notice delivered');
        return recorded ? 'delivered' : 'lost_lease';
      }
      failure =
        response.status >= 300 && response.status < 400
          ? `the receiver answered a redirect (HTTP ${response.status}), which is not followed`
          : `the receiver answered HTTP ${response.status}`;
    } catch (error) {
      if (this.#abort.signal.aborted) {
        // Stopping: this was not the receiver's fault, so the attempt is given back.
        return (await releaseClaim(db, row.seq, instanceId, isoNow(), null)) ? 'released' : 'lost_lease';
      }
      const refusal = outboundRefusal(error);
      if (refusal !== null) {
        // The policy refuses the target: permanent, so a dead letter now rather than retries. A
        // refusal at connect time means a target that was allowed when it was accepted now
        // resolves somewhere refused (DNS rebinding, say): a security event, so it is audited
        // with the dead letter, in the same transaction.
        const reason = `${OUTBOUND_REFUSED_CODE}: ${refusal.message}`.slice(0, MAX_ERROR_CHARS);
        const recorded = await storage.transaction(async (trx) => {
          // The chain's lock first, as every audited write takes it (one lock order, no deadlock).
          await storage.lock(trx, 'audit_chain');
          if (!(await markFailed(trx, row.seq, instanceId, reason, null))) return false;
          await this.#options.audit.append(trx, {
            type: 'outbox.refused',
            actor: 'system',
            details: { event_id: row.event_id, kind: row.kind, target: row.target, reason },
          });
          return true;
        });
        if (recorded)
          this.#log.warn(
            { event_id: row.event_id, kind: row.kind, target: row.target, attempts: row.attempts, error: reason },
            'outbox notice refused by the outbound policy; it is a dead letter',
          );
        return recorded ? 'dead' : 'lost_lease';
      }
      failure = describeFetchError(error, this.#settings.request_timeout_ms);
    }
    return this.#fail(row, failure);
  }

  async #fail(row: OutboxRow, reason: string): Promise<DeliveryOutcome> {
    const { storage, instanceId } = this.#options;
    const text = reason.slice(0, MAX_ERROR_CHARS);
    if (row.attempts >= this.#settings.max_attempts) {
      const recorded = await markFailed(storage.db, row.seq, instanceId, text, null);
      if (recorded)
        this.#log.warn(
          { event_id: row.event_id, kind: row.kind, target: row.target, attempts: row.attempts, error: text },
          'outbox notice is a dead letter after its last attempt',
        );
      return recorded ? 'dead' : 'lost_lease';
    }
    const delay = retryDelayMs(
      row.attempts,
      { initialMs: this.#settings.backoff_initial_ms, maxMs: this.#settings.backoff_max_ms },
      this.#random,
    );
    const recorded = await markFailed(storage.db, row.seq, instanceId, text, isoNow(Date.now() + delay));
    if (recorded)
      this.#log.info(
        { event_id: row.event_id, kind: row.kind, attempts: row.attempts, retry_in_ms: delay, error: text },
        'outbox delivery failed; will retry',
      );
    return recorded ? 'retry' : 'lost_lease';
  }
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const code = err.cause?.code;
  if (code) return `could not reach the receiver (${code})`;
  return `could not reach the receiver (${err.cause?.message ?? err.message ?? 'unknown error'})`;
}
