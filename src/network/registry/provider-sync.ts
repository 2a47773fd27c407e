/**
 * Keeps the registry's provider list in step with the roster: a queue of wanted changes per NPI
 * (register or remove), worked through one at a time by a background loop while the organization
 * is registered, retried with backoff while the registry is unreachable, and persisted so that a
 * removal survives a restart. A provider the registry refuses is not sent again unchanged.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import { retryDelayMs } from '../../foundation/outbound/index.ts';
import { isRegistryError } from './errors.ts';
import { requireClient, type Registration } from './registration.ts';
import type { ProviderRegistryState, ProviderRegistryStateName } from './state.ts';
import { copyProvider, credentialsOf, fingerprint, NPI_SHAPE, validateProvider } from './support.ts';
import type { ProviderInput, ProviderStatus, RegistryRuntime } from './types.ts';

type DesiredOp = { op: 'register'; provider: ProviderInput } | { op: 'remove' };

type Outcome = 'done' | 'unreachable' | 'stopped';

export class ProviderSync {
  readonly #runtime: RegistryRuntime;
  readonly #registration: Registration;
  /** Whether the service's background work runs (between start() and stop()). */
  readonly #running: () => boolean;
  /** Told every roster read (the agent card is built from it). */
  readonly #rosterRead: (roster: readonly ProviderInput[]) => void;
  readonly #providers = new Map<string, ProviderRegistryState>();
  readonly #desired = new Map<string, DesiredOp>();
  readonly #waiters = new Map<string, Array<() => void>>();
  /** What a rejected provider looked like when refused, so the roster does not resubmit it unchanged. */
  readonly #rejectedAs = new Map<string, string>();
  #wake: (() => void) | null = null;
  #wakePending = false;
  #refresh: Promise<void> | null = null;
  #refreshQueued = false;

  constructor(options: {
    runtime: RegistryRuntime;
    registration: Registration;
    running: () => boolean;
    rosterRead?: (roster: readonly ProviderInput[]) => void;
  }) {
    this.#runtime = options.runtime;
    this.#registration = options.registration;
    this.#running = options.running;
    this.#rosterRead = options.rosterRead ?? (() => undefined);
  }

  /** The stored provider states (at the registration's first load). */
  load(states: Map<string, ProviderRegistryState>): void {
    for (const [npi, state] of states) {
      this.#providers.set(npi, state);
      // A removal survives restarts; a pending registration waits for a sync to bring its details.
      if (state.state === 'removing' && !this.#desired.has(npi)) this.#desired.set(npi, { op: 'remove' });
    }
  }

  /** Forgets every provider state (after an operator reset cleared the store). */
  clear(): void {
    this.#providers.clear();
    this.#desired.clear();
    this.#rejectedAs.clear();
  }

  statuses(): ProviderStatus[] {
    return [...this.#providers.values()]
      .filter((provider) => provider.state !== 'removed')
      .map((provider) => ({ npi: provider.npi, state: provider.state, lastError: provider.lastError }));
  }

  /** See RegistryService.registerProvider. */
  async register(provider: ProviderInput): Promise<ProviderStatus> {
    validateProvider(provider, 'provider');
    await this.#registration.ensureLoaded();
    const current = this.#providers.get(provider.npi);
    const queued = this.#desired.get(provider.npi);
    if (current?.state === 'registered' && queued?.op !== 'remove') {
      this.#desired.delete(provider.npi);
      return this.#status(provider.npi);
    }
    this.#desired.set(provider.npi, { op: 'register', provider: copyProvider(provider) });
    await this.#setProvider(provider.npi, 'pending', current?.state === 'pending' ? current.lastError : null);
    return this.#awaitAttempt(provider.npi);
  }

  /** See RegistryService.removeProvider. */
  async remove(npi: string): Promise<ProviderStatus> {
    if (typeof npi !== 'string' || !NPI_SHAPE.test(npi)) {
      throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: 'npi', message: 'must be a ten-digit NPI' }] });
    }
    await this.#registration.ensureLoaded();
    const current = this.#providers.get(npi);
    if (current?.state === 'removed' && !this.#desired.has(npi)) return this.#status(npi);
    if (current?.state === 'rejected' && !this.#desired.has(npi)) {
      // The registry never accepted it; nothing to remove there.
      await this.#setProvider(npi, 'removed', null);
      return this.#status(npi);
    }
    this.#desired.set(npi, { op: 'remove' });
    await this.#setProvider(npi, 'removing', null);
    return this.#awaitAttempt(npi);
  }

  /**
   * Makes the registry's provider list match `providers`; with `keepRejected`, a listed provider
   * the registry refused is left as it is unless its details changed since (decided per provider
   * with no await in between, so an answer arriving meanwhile cannot be overtaken).
   */
  async sync(providers: ProviderInput[], options: { keepRejected: boolean }): Promise<ProviderStatus[]> {
    const wanted = new Map<string, ProviderInput>();
    providers.forEach((provider, index) => {
      validateProvider(provider, `providers[${index}]`);
      if (wanted.has(provider.npi)) {
        throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: `providers[${index}].npi`, message: 'listed twice' }] });
      }
      wanted.set(provider.npi, copyProvider(provider));
    });
    await this.#registration.ensureLoaded();
    for (const [npi, provider] of wanted) await this.#want(npi, provider, options);
    for (const [npi, current] of [...this.#providers]) {
      if (wanted.has(npi) || current.state === 'removed') continue;
      if (current.state === 'rejected') {
        this.#desired.delete(npi);
        await this.#setProvider(npi, 'removed', null);
        continue;
      }
      if (this.#desired.get(npi)?.op !== 'remove') this.#desired.set(npi, { op: 'remove' });
      if (current.state !== 'removing') await this.#setProvider(npi, 'removing', null);
    }
    this.wake();
    return this.statuses();
  }

  async #want(npi: string, provider: ProviderInput, options: { keepRejected: boolean }): Promise<void> {
    const current = this.#providers.get(npi);
    const queued = this.#desired.get(npi);
    if (current?.state === 'registered' && queued?.op !== 'remove') return;
    if (
      options.keepRejected &&
      current?.state === 'rejected' &&
      queued === undefined &&
      this.#rejectedAs.get(npi) === fingerprint(provider)
    )
      return;
    // The same request already queued (perhaps in flight) stays as it is: replacing it would make
    // its answer count for nothing and send it again.
    if (queued?.op !== 'register' || fingerprint(queued.provider) !== fingerprint(provider))
      this.#desired.set(npi, { op: 'register', provider });
    if (current?.state !== 'pending') await this.#setProvider(npi, 'pending', null);
  }

  /** See RegistryService.refreshProviders. */
  refresh(): Promise<void> {
    if (this.#runtime.options.roster === undefined || this.#runtime.client === null) return Promise.resolve();
    if (this.#refresh !== null) {
      this.#refreshQueued = true;
      return this.#refresh;
    }
    const pass = (async (): Promise<void> => {
      try {
        do {
          this.#refreshQueued = false;
          await this.#reconcileRoster();
        } while (this.#refreshQueued);
      } finally {
        this.#refresh = null;
      }
    })();
    this.#refresh = pass;
    return pass;
  }

  /** The refresh under way, if any (stop() lets it finish). */
  get refreshing(): Promise<void> | null {
    return this.#refresh;
  }

  async #reconcileRoster(): Promise<void> {
    const roster = this.#runtime.options.roster;
    if (roster === undefined) return;
    let listed: ProviderInput[];
    try {
      listed = await roster();
    } catch (error) {
      this.#runtime.log.warn(
        { component: 'registry', error: error instanceof Error ? error.message : String(error) },
        'could not read the provider roster; the registry provider list is reconciled again at the next heartbeat',
      );
      return;
    }
    const wanted = new Map<string, ProviderInput>();
    for (const provider of listed) {
      try {
        validateProvider(provider, 'provider');
      } catch {
        this.#runtime.log.warn(
          { component: 'registry', npi: provider.npi },
          'roster entry cannot be sent to the registry (NPI, name or types missing); left out',
        );
        continue;
      }
      if (!wanted.has(provider.npi)) wanted.set(provider.npi, provider);
    }
    this.#rosterRead([...wanted.values()]);
    if (!(await this.#registration.ensureLoaded())) return;
    // A provider the registry refused is sent again only once its details change (or after a
    // restart, which forgets what was refused); until then it is left as it is.
    await this.sync([...wanted.values()], { keepRejected: true });
  }

  /** The background loop: works through the queue while registered, until stopped. */
  async loop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (this.#registration.state !== 'registered' || this.#desired.size === 0) {
        await this.#idle(signal);
        continue;
      }
      const npi = this.#nextNpi();
      const op = this.#desired.get(npi);
      if (op === undefined) continue;
      let outcome: Outcome;
      try {
        outcome = await this.#attempt(npi, op, signal);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.#runtime.log.error(
          { component: 'registry', npi, error: message },
          'unexpected failure while updating a provider in the registry',
        );
        outcome = 'unreachable';
      }
      this.#release(npi);
      if (outcome === 'stopped') return;
      if (outcome === 'unreachable') {
        failures += 1;
        await this.#idle(signal, retryDelayMs(failures, this.#runtime.backoff, this.#runtime.random));
      } else {
        failures = 0;
      }
    }
  }

  /** Someone waiting on an npi goes first; otherwise insertion order. */
  #nextNpi(): string {
    for (const npi of this.#desired.keys()) if (this.#waiters.has(npi)) return npi;
    return this.#desired.keys().next().value as string;
  }

  async #attempt(npi: string, op: DesiredOp, signal: AbortSignal): Promise<Outcome> {
    const client = requireClient(this.#runtime);
    const record = this.#registration.record;
    if (record === null) return 'stopped';
    const stillWanted = (): boolean => this.#desired.get(npi) === op;
    const openState: ProviderRegistryStateName = op.op === 'register' ? 'pending' : 'removing';
    try {
      if (op.op === 'register') await client.registerProvider(credentialsOf(record), op.provider, { signal });
      else await client.deleteProvider(credentialsOf(record), npi, { signal });
      if (stillWanted()) await this.#done(npi, op, 'accepted');
      return 'done';
    } catch (error) {
      if (!isRegistryError(error)) throw error;
      if (error.kind === 'aborted' || signal.aborted) return 'stopped';
      if (error.kind === 'unauthorized') {
        if (stillWanted()) await this.#setProvider(npi, openState, error.describe());
        await this.#registration.markInvalid('unauthorized', error, { persist: true });
        return 'done';
      }
      if (error.kind === 'duplicate' && op.op === 'register') {
        if (stillWanted()) await this.#done(npi, op, 'already registered');
        return 'done';
      }
      if (error.kind === 'unreachable') {
        if (stillWanted()) await this.#setProvider(npi, openState, error.describe());
        this.#runtime.log.warn(
          { component: 'registry', npi, operation: error.operation, error: error.describe() },
          'registry unreachable; provider change will be retried',
        );
        return 'unreachable';
      }
      // Refused: retrying the same request would only be refused again.
      if (!stillWanted()) return 'done';
      this.#desired.delete(npi);
      if (op.op === 'register') this.#rejectedAs.set(npi, fingerprint(op.provider));
      await this.#setProvider(npi, op.op === 'register' ? 'rejected' : 'removing', error.describe());
      this.#runtime.log.error(
        { component: 'registry', npi, operation: error.operation, error: error.describe() },
        'the registry refused a provider change',
      );
      await this.#runtime.audit(op.op === 'register' ? 'registry.provider_rejected' : 'registry.provider_removal_refused', {
        npi,
        registryStatus: error.registryStatus,
        registryError: error.registryError,
      });
      return 'done';
    }
  }

  async #done(npi: string, op: DesiredOp, how: string): Promise<void> {
    this.#desired.delete(npi);
    await this.#setProvider(npi, op.op === 'register' ? 'registered' : 'removed', null);
    this.#runtime.log.info(
      { component: 'registry', npi, how },
      op.op === 'register' ? 'provider listed in the registry' : 'provider removed from the registry',
    );
    await this.#runtime.audit(op.op === 'register' ? 'registry.provider_registered' : 'registry.provider_removed', { npi });
  }

  #idle(signal: AbortSignal, ms?: number): Promise<void> {
    if (this.#wakePending || signal.aborted) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      this.#wake = done;
      if (ms !== undefined) timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Queued changes may go now (registered, reachable again, or a new change queued). */
  wake(): void {
    if (this.#wake !== null) this.#wake();
    else this.#wakePending = true;
  }

  async #awaitAttempt(npi: string): Promise<ProviderStatus> {
    if (!this.#running() || this.#registration.state !== 'registered' || !this.#desired.has(npi)) return this.#status(npi);
    await new Promise<void>((resolve) => {
      const list = this.#waiters.get(npi) ?? [];
      list.push(resolve);
      this.#waiters.set(npi, list);
      this.wake();
    });
    return this.#status(npi);
  }

  #release(npi: string): void {
    const list = this.#waiters.get(npi);
    this.#waiters.delete(npi);
    for (const resolve of list ?? []) resolve();
  }

  /** Nobody waits for an attempt any longer (stopped, or the registration became unusable). */
  releaseAll(): void {
    for (const npi of [...this.#waiters.keys()]) this.#release(npi);
  }

  #status(npi: string): ProviderStatus {
    const state = this.#providers.get(npi);
    return { npi, state: state?.state ?? 'pending', lastError: state?.lastError ?? null };
  }

  async #setProvider(npi: string, state: ProviderRegistryStateName, lastError: string | null): Promise<void> {
    const value: ProviderRegistryState = { npi, state, lastError, updatedAt: this.#runtime.now().toISOString() };
    this.#providers.set(npi, value);
    this.#runtime.publish();
    try {
      await this.#runtime.options.store.saveProviderState(npi, value);
    } catch (error) {
      this.#runtime.log.error(
        { component: 'registry', npi, error: error instanceof Error ? error.message : String(error) },
        'could not persist a provider registry state',
      );
    }
  }
}
