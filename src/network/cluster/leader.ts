/**
 * Leader election over a lease: of the instances running a LeaderElector with the same name, at
 * most one is leader at a time (see the fencing caveat in lease.ts), and when the leader dies
 * another takes over within `ttlMs + renewIntervalMs`.
 *
 * The leader renews every `renewIntervalMs` (ttl/3 by default, so two renewals in a row may fail
 * before the lease runs out); followers try to take the lease at the same pace. A leader that
 * cannot renew steps down by itself when its lease would have run out, measured on its own
 * monotonic clock from the moment it last asked, so it never believes it leads after another
 * instance could have taken over. `stop()` steps down and releases the lease, so a planned
 * shutdown hands over within one renew interval.
 *
 * Used for the registry heartbeat: only the leader heartbeats (leaseTimingFor(interval) keeps the
 * takeover within one heartbeat interval).
 */
import { performance } from 'node:perf_hooks';
import type { Storage } from '../../foundation/storage/index.ts';
import { LeaseStore } from './lease.ts';

export interface LeaderElectorOptions {
  storage: Pick<Storage, 'db' | 'dialect'>;
  /** The job, for example `registry-heartbeat`. Every instance uses the same name. */
  name: string;
  /** This instance's unique id (Neuron.instanceId). */
  holder: string;
  ttlMs: number;
  /** Default ttlMs / 3. Must be below ttlMs. */
  renewIntervalMs?: number;
  /** Called when this instance becomes leader; awaited before the next renewal. */
  onElected?: () => void | Promise<void>;
  /** Called when this instance stops being leader (lost lease, no renewal in time, or stop()). */
  onDeposed?: () => void | Promise<void>;
  /** Database errors while renewing, and errors thrown by the callbacks. Default: ignored. */
  onError?: (error: unknown) => void;
}

/**
 * Lease timing for a job that must run every `intervalMs` and may be taken over by another
 * instance within one interval: ttl + renew interval = intervalMs.
 */
export function leaseTimingFor(intervalMs: number): { ttlMs: number; renewIntervalMs: number } {
  const ttlMs = Math.max(3, Math.floor((intervalMs * 3) / 4));
  return { ttlMs, renewIntervalMs: Math.max(1, Math.floor(ttlMs / 3)) };
}

export class LeaderElector {
  readonly name: string;
  readonly holder: string;
  readonly #leases: LeaseStore;
  readonly #ttlMs: number;
  readonly #renewIntervalMs: number;
  readonly #options: LeaderElectorOptions;
  #leader = false;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | null = null;
  /** Serialises the callbacks so onDeposed never overtakes onElected. */
  #transitions: Promise<void> = Promise.resolve();

  constructor(options: LeaderElectorOptions) {
    const renewIntervalMs = options.renewIntervalMs ?? Math.max(1, Math.floor(options.ttlMs / 3));
    if (!(renewIntervalMs > 0 && renewIntervalMs < options.ttlMs)) throw new RangeError('renewIntervalMs must be positive and below ttlMs');
    this.#options = options;
    this.name = options.name;
    this.holder = options.holder;
    this.#ttlMs = options.ttlMs;
    this.#renewIntervalMs = renewIntervalMs;
    this.#leases = new LeaseStore(options.storage);
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** Starts campaigning; resolves after the first attempt (so `isLeader` is meaningful). */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.#tick();
  }

  /** Stops campaigning; if leader, steps down (onDeposed) and releases the lease. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadlineTimer);
    await this.#inFlight;
    if (this.#leader) {
      this.#depose();
      await this.#transitions;
      // Released only after onDeposed returned, so the next leader starts after this one stopped.
      await this.#leases.release(this.name, this.holder).catch((error: unknown) => this.#report(error));
    }
    await this.#transitions;
  }

  #tick(): Promise<void> {
    const run = this.#attempt().finally(() => {
      this.#inFlight = null;
      if (this.#running) {
        this.#timer = setTimeout(() => void this.#tick(), this.#renewIntervalMs);
        this.#timer.unref();
      }
    });
    this.#inFlight = run;
    return run;
  }

  async #attempt(): Promise<void> {
    // The lease runs ttl from when the database ran the statement, which is after this moment.
    const askedAt = performance.now();
    let held: boolean;
    try {
      held = (await this.#leases.acquireOrRenew(this.name, this.holder, this.#ttlMs)).held;
    } catch (error) {
      this.#report(error);
      // Still leader until the deadline timer (set at the last success) says otherwise.
      return;
    }
    if (!this.#running) {
      // stop() was called while asking; it releases the lease if we turn out to hold it.
      if (held && !this.#leader) await this.#leases.release(this.name, this.holder).catch((error: unknown) => this.#report(error));
      return;
    }
    if (held) {
      clearTimeout(this.#deadlineTimer);
      const remaining = askedAt + this.#ttlMs - performance.now();
      this.#deadlineTimer = setTimeout(
        () => {
          if (this.#leader) this.#depose();
        },
        Math.max(0, remaining),
      );
      this.#deadlineTimer.unref();
      if (!this.#leader) {
        this.#leader = true;
        this.#transition(this.#options.onElected);
        await this.#transitions;
      }
    } else if (this.#leader) {
      this.#depose();
      await this.#transitions;
    }
  }

  #depose(): void {
    clearTimeout(this.#deadlineTimer);
    this.#leader = false;
    this.#transition(this.#options.onDeposed);
  }

  #transition(callback: (() => void | Promise<void>) | undefined): void {
    if (!callback) return;
    this.#transitions = this.#transitions.then(async () => {
      try {
        await callback();
      } catch (error) {
        this.#report(error);
      }
    });
  }

  #report(error: unknown): void {
    try {
      this.#options.onError?.(error);
    } catch {
      // A failing error reporter must not stop the election.
    }
  }
}
