/**
 * The Neuron's presence in the Axon registry: register the organization once, keep its endpoint
 * marked reachable with heartbeats, and keep the registry's provider list in step with ours.
 *
 * Everything runs in the background: `start()` returns at once, a registry that is down at first
 * boot is retried with exponential backoff and full jitter until it answers, and an outage during
 * heartbeats is retried the same way and recovers on its own. Patients keep being served
 * meanwhile; nothing here blocks the rest of the Neuron.
 *
 * Faults that never fix themselves (a 401, an NPI already registered without our credentials, a
 * refused registration, unreadable stored credentials) move the service to `invalid`: heartbeats
 * stop, the fault is logged at error level, audited as `registry.registration_invalid`, and
 * `status()` carries an operator remedy. No silent retry loop.
 *
 * The registration id and bearer token never reach a log line or an audit event; logs carry a
 * short hash of the registration id (`registration`) so lines can be correlated.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { NeuronError } from '../errors/index.ts';
import { fullJitterDelay, type BackoffPolicy } from './backoff.ts';
import {
  AxonClient,
  DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS,
  isRegistryError,
  type ProviderCredential,
  type RegistryCredentials,
  type RegistryError,
} from './client.ts';
import type { ProviderRegistryState, ProviderRegistryStateName, RegistrationRecord, RegistryStateStore } from './state.ts';

// The registry marks an endpoint stale this long after its last heartbeat (spec), and then
// refuses patients a grant. Every heartbeat setting has to keep us inside it.
export const REGISTRY_STALE_AFTER_MS = 5 * 60_000;
// The spec's recommended heartbeat period: five chances per staleness window.
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 60_000;
// Same as the config defaults registry.backoff_initial_ms / backoff_max_ms: the first retry comes
// within a second, and a long outage is probed about once a minute.
export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = { initialMs: 1_000, maxMs: 60_000 };

export type RegistryState = 'unregistered' | 'registering' | 'registered' | 'invalid' | 'disabled';

/** Structured logger, pino-compatible (`logger.info({ ... }, 'message')`). */
export interface RegistryLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface RegistryAuditEvent {
  type: string;
  details: Record<string, unknown>;
}

export interface ProviderInput {
  npi: string;
  name: string;
  /** Registry taxonomy names, for example `physician`. */
  types: string[];
  specialty?: string;
  credentials?: ProviderCredential[];
}

export interface RegistryServiceOptions {
  /** false: nothing is contacted and the state is `disabled` (config registry.enabled). Default true. */
  enabled?: boolean;
  registryUrl: string;
  /** The full public ws(s)://…/ws/handshake URL; Axon gives it to patients verbatim. */
  endpointUrl: string;
  organization: { npi: string; name: string; type: string };
  /** Must be below the registry's 5-minute staleness window. Default 60 s. */
  heartbeatIntervalMs?: number;
  requestTimeoutMs?: number;
  backoff?: Partial<BackoffPolicy>;
  store: RegistryStateStore;
  logger: RegistryLogger;
  audit?: (event: RegistryAuditEvent) => Promise<void>;
  /**
   * The providers that should be listed, read afresh each time (for example the active roster in
   * the database). When given, the service reconciles the registry's provider list with it at
   * start, after registering, at every heartbeat and on `refreshProviders()`, so changes made by
   * another process (the CLI, another instance) reach the registry within one heartbeat.
   */
  roster?: () => Promise<ProviderInput[]>;
  now?: () => Date;
  /** Source of jitter, [0, 1). Default Math.random. */
  random?: () => number;
}

export interface ProviderStatus {
  npi: string;
  state: ProviderRegistryStateName;
  lastError: string | null;
}

export interface RegistryStatus {
  state: RegistryState;
  registered: boolean;
  /** Shown to operators so they can talk to the registry operator; the token never is. */
  registrationId: string | null;
  registryUrl: string;
  endpointUrl: string;
  lastHeartbeatAt: string | null;
  consecutiveFailures: number;
  lastError: string | null;
  /** What the operator has to do, when the state is `invalid`. */
  remedy: string | null;
  /** Whether the background work is running (between start() and stop()). */
  running: boolean;
  providers: ProviderStatus[];
}

/** `status()` as saved for other processes (`RegistryStateStore.saveStatus`); holds no secret. */
export interface RegistryStatusSnapshot extends RegistryStatus {
  /** When the snapshot was taken. */
  updatedAt: string;
}

export type InvalidReason = 'unauthorized' | 'organization_already_registered' | 'registration_rejected' | 'registry_changed' | 'state_unreadable';

type DesiredOp = { op: 'register'; provider: ProviderInput } | { op: 'remove' };

type Outcome = 'done' | 'unreachable' | 'stopped';

const NPI_SHAPE = /^\d{10}$/;

export class RegistryService {
  readonly #options: RegistryServiceOptions;
  readonly #enabled: boolean;
  readonly #client: AxonClient | null;
  readonly #heartbeatIntervalMs: number;
  readonly #backoff: BackoffPolicy;
  readonly #now: () => Date;
  readonly #random: () => number;
  readonly #log: RegistryLogger;

  #state: RegistryState;
  #record: RegistrationRecord | null = null;
  readonly #providers = new Map<string, ProviderRegistryState>();
  readonly #desired = new Map<string, DesiredOp>();
  readonly #waiters = new Map<string, Array<() => void>>();
  #loading: Promise<boolean> | null = null;
  #registrationFailures = 0;
  #lastError: string | null = null;
  #remedy: string | null = null;
  #controller: AbortController | null = null;
  #tasks: Promise<void>[] = [];
  #wake: (() => void) | null = null;
  #wakePending = false;
  #staleReported = false;
  #refresh: Promise<void> | null = null;
  #refreshQueued = false;
  /** What a rejected provider looked like when refused, so the roster does not resubmit it unchanged. */
  readonly #rejectedAs = new Map<string, string>();
  #publishing: Promise<void> = Promise.resolve();
  #publishQueued = false;

  constructor(options: RegistryServiceOptions) {
    this.#options = options;
    this.#enabled = options.enabled ?? true;
    this.#log = options.logger;
    this.#now = options.now ?? (() => new Date());
    this.#random = options.random ?? Math.random;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.#backoff = {
      initialMs: options.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs,
      maxMs: options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs,
    };
    this.#state = this.#enabled ? 'unregistered' : 'disabled';
    if (!this.#enabled) {
      this.#client = null;
      return;
    }
    validateOptions(options, this.#heartbeatIntervalMs, this.#backoff);
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS;
    this.#client = new AxonClient({ baseUrl: options.registryUrl, requestTimeoutMs });
    if (this.#heartbeatIntervalMs + requestTimeoutMs >= REGISTRY_STALE_AFTER_MS) {
      this.#log.warn(
        { component: 'registry', heartbeatIntervalMs: this.#heartbeatIntervalMs, requestTimeoutMs },
        'heartbeat interval plus request timeout reaches the 5-minute staleness window; one slow heartbeat can mark the endpoint stale',
      );
    }
    const registry = new URL(options.registryUrl);
    if (registry.protocol === 'http:' && !isLoopback(registry.hostname)) {
      this.#log.warn({ component: 'registry', registryUrl: options.registryUrl }, 'registry.url is plain http: the bearer token crosses the network unencrypted');
    }
  }

  /** Starts the background work and returns at once; safe to call twice. */
  async start(): Promise<void> {
    if (this.#controller !== null) return;
    if (!this.#enabled) {
      this.#log.info({ component: 'registry' }, 'registry integration disabled; the organization is not listed in Axon');
      return;
    }
    const controller = new AbortController();
    this.#controller = controller;
    this.#tasks = [this.#guard('registration', this.#run(controller.signal)), this.#guard('providers', this.#providerLoop(controller.signal))];
    this.#publish();
  }

  /**
   * Cancels timers and in-flight requests, except a registration request, whose answer is saved
   * first (it carries the only copy of the token); resolves once the background work has ended.
   */
  async stop(): Promise<void> {
    const controller = this.#controller;
    if (controller === null) return;
    this.#controller = null;
    controller.abort();
    this.#wakeProviders();
    this.#releaseAll();
    await Promise.allSettled(this.#tasks);
    this.#tasks = [];
    await this.#refresh?.catch(() => undefined);
    if (this.#state === 'registering') this.#state = 'unregistered';
    this.#publish();
    await this.#publishing;
    this.#log.info({ component: 'registry' }, 'registry client stopped');
  }

  /**
   * Forgets the stored registration and provider states so the next start registers again.
   * Only useful once the registry operator has removed the old entry (an NPI registers once).
   */
  async reset(): Promise<void> {
    if (this.#controller !== null) throw new NeuronError('CONFLICT', { message: 'Stop the registry service before resetting it' });
    await this.#options.store.clear();
    const previous = this.#record;
    this.#record = null;
    this.#providers.clear();
    this.#desired.clear();
    this.#rejectedAs.clear();
    this.#loading = null;
    this.#registrationFailures = 0;
    this.#lastError = null;
    this.#remedy = null;
    this.#state = this.#enabled ? 'unregistered' : 'disabled';
    this.#log.warn({ component: 'registry', registration: previous ? ref(previous.registrationId) : null }, 'stored registry registration cleared');
    await this.#audit('registry.reset', { registration: previous ? ref(previous.registrationId) : null });
    this.#publish();
    await this.#publishing;
  }

  status(): RegistryStatus {
    const record = this.#record;
    return {
      state: this.#state,
      registered: record !== null && this.#state === 'registered',
      registrationId: record?.registrationId ?? null,
      registryUrl: this.#options.registryUrl,
      endpointUrl: this.#options.endpointUrl,
      lastHeartbeatAt: record?.lastHeartbeatAt ?? null,
      consecutiveFailures: record !== null ? record.consecutiveFailures : this.#registrationFailures,
      lastError: this.#lastError,
      remedy: this.#remedy,
      running: this.#controller !== null,
      providers: [...this.#providers.values()]
        .filter((provider) => provider.state !== 'removed')
        .map((provider) => ({ npi: provider.npi, state: provider.state, lastError: provider.lastError })),
    };
  }

  /**
   * Registers a provider (idempotent: a provider the registry already holds counts as done).
   * Resolves with the provider's status after the first attempt, or at once with `pending` when
   * the Neuron is not registered or not running; pending work continues in the background.
   */
  async registerProvider(provider: ProviderInput): Promise<ProviderStatus> {
    validateProvider(provider, 'provider');
    await this.#ensureLoaded();
    const current = this.#providers.get(provider.npi);
    const queued = this.#desired.get(provider.npi);
    if (current?.state === 'registered' && queued?.op !== 'remove') {
      this.#desired.delete(provider.npi);
      return this.#providerStatus(provider.npi);
    }
    this.#desired.set(provider.npi, { op: 'register', provider: copyProvider(provider) });
    await this.#setProvider(provider.npi, 'pending', current?.state === 'pending' ? current.lastError : null);
    return this.#awaitAttempt(provider.npi);
  }

  /** Removes a provider from the registry (the registry may keep the entry). Same timing as registerProvider. */
  async removeProvider(npi: string): Promise<ProviderStatus> {
    if (typeof npi !== 'string' || !NPI_SHAPE.test(npi)) {
      throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: 'npi', message: 'must be a ten-digit NPI' }] });
    }
    await this.#ensureLoaded();
    const current = this.#providers.get(npi);
    if (current?.state === 'removed' && !this.#desired.has(npi)) return this.#providerStatus(npi);
    if (current?.state === 'rejected' && !this.#desired.has(npi)) {
      // The registry never accepted it; nothing to remove there.
      await this.#setProvider(npi, 'removed', null);
      return this.#providerStatus(npi);
    }
    this.#desired.set(npi, { op: 'remove' });
    await this.#setProvider(npi, 'removing', null);
    return this.#awaitAttempt(npi);
  }

  /**
   * Makes the registry's provider list match `providers`: registers the ones not yet registered
   * and removes the ones we registered before that are no longer listed. Returns at once with the
   * providers' states; the requests run in the background.
   */
  async syncProviders(providers: ProviderInput[]): Promise<ProviderStatus[]> {
    return this.#sync(providers, { keepRejected: false });
  }

  /**
   * syncProviders; with `keepRejected`, a listed provider the registry refused is left as it is
   * unless its details changed since (decided per provider with no await in between, so an answer
   * arriving meanwhile cannot be overtaken).
   */
  async #sync(providers: ProviderInput[], options: { keepRejected: boolean }): Promise<ProviderStatus[]> {
    const wanted = new Map<string, ProviderInput>();
    providers.forEach((provider, index) => {
      validateProvider(provider, `providers[${index}]`);
      if (wanted.has(provider.npi)) {
        throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: `providers[${index}].npi`, message: 'listed twice' }] });
      }
      wanted.set(provider.npi, copyProvider(provider));
    });
    await this.#ensureLoaded();
    for (const [npi, provider] of wanted) {
      const current = this.#providers.get(npi);
      const queued = this.#desired.get(npi);
      if (current?.state === 'registered' && queued?.op !== 'remove') continue;
      if (options.keepRejected && current?.state === 'rejected' && queued === undefined && this.#rejectedAs.get(npi) === fingerprint(provider)) continue;
      // The same request already queued (perhaps in flight) stays as it is: replacing it would make
      // its answer count for nothing and send it again.
      if (queued?.op !== 'register' || fingerprint(queued.provider) !== fingerprint(provider)) this.#desired.set(npi, { op: 'register', provider });
      if (current?.state !== 'pending') await this.#setProvider(npi, 'pending', null);
    }
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
    this.#wakeProviders();
    return this.status().providers;
  }

  /**
   * Reads the roster (option `roster`) and reconciles the registry's provider list with it, in the
   * background like `syncProviders`. Concurrent calls share one pass, plus one more pass when a
   * call arrives during it, so a burst of changes costs at most two roster reads. Never throws: a
   * roster that cannot be read is logged and tried again at the next heartbeat.
   */
  refreshProviders(): Promise<void> {
    if (this.#options.roster === undefined || !this.#enabled) return Promise.resolve();
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

  async #reconcileRoster(): Promise<void> {
    const roster = this.#options.roster;
    if (roster === undefined) return;
    let listed: ProviderInput[];
    try {
      listed = await roster();
    } catch (error) {
      this.#log.warn(
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
        this.#log.warn({ component: 'registry', npi: provider.npi }, 'roster entry cannot be sent to the registry (NPI, name or types missing); left out');
        continue;
      }
      if (!wanted.has(provider.npi)) wanted.set(provider.npi, provider);
    }
    if (!(await this.#ensureLoaded())) return;
    // A provider the registry refused is sent again only once its details change (or after a
    // restart, which forgets what was refused); until then it is left as it is.
    await this.#sync([...wanted.values()], { keepRejected: true });
  }

  // ---------------------------------------------------------------- background: registration

  async #run(signal: AbortSignal): Promise<void> {
    if (!(await this.#ensureLoaded())) return;
    if (signal.aborted || this.#state === 'invalid') return;
    // Shows the roster's providers as pending while registration is still under way.
    void this.refreshProviders();
    let firstDelay = this.#heartbeatIntervalMs;
    if (this.#record === null) {
      if (!(await this.#registerLoop(signal))) return;
      // The roster may have changed during a long first-boot outage.
      void this.refreshProviders();
    } else {
      const record = this.#record;
      if (!sameUrl(record.registryUrl, this.#options.registryUrl) || record.organizationNpi !== this.#options.organization.npi) {
        await this.#markInvalid('registry_changed', null, { persist: false });
        return;
      }
      this.#state = 'registered';
      this.#log.info(
        { component: 'registry', registration: ref(record.registrationId), registryUrl: record.registryUrl },
        'using the stored registry registration',
      );
      // Announce the (possibly new) endpoint right away instead of one interval later.
      firstDelay = 0;
    }
    this.#wakeProviders();
    await this.#heartbeatLoop(signal, firstDelay);
  }

  async #registerLoop(signal: AbortSignal): Promise<boolean> {
    const client = this.#requireClient();
    const organization = this.#options.organization;
    this.#state = 'registering';
    let attempt = 0;
    while (!signal.aborted) {
      try {
        // Not cancelled by stop(): the answer holds the only copy of a token the registry never
        // reissues, and abandoning a request the registry has already carried out would leave the
        // NPI registered without credentials. stop() waits for it (at most the request timeout).
        const registration = await client.registerNeuron({
          organizationNpi: organization.npi,
          organizationName: organization.name,
          organizationType: organization.type,
          endpointUrl: this.#options.endpointUrl,
        });
        this.#record = {
          registrationId: registration.registrationId,
          bearerToken: registration.bearerToken,
          registryUrl: this.#options.registryUrl,
          organizationNpi: organization.npi,
          endpointUrl: this.#options.endpointUrl,
          registeredAt: this.#now().toISOString(),
          status: 'registered',
          lastHeartbeatAt: null,
          consecutiveFailures: 0,
          lastError: null,
        };
        this.#registrationFailures = 0;
        this.#lastError = null;
        this.#state = 'registered';
        await this.#persistRecord();
        const registrationRef = ref(registration.registrationId);
        this.#log.info(
          { component: 'registry', registration: registrationRef, endpointUrl: this.#options.endpointUrl, attempts: attempt + 1 },
          'registered with the Axon registry',
        );
        await this.#audit('registry.registered', {
          registration: registrationRef,
          registryUrl: this.#options.registryUrl,
          endpointUrl: this.#options.endpointUrl,
          organizationNpi: organization.npi,
        });
        return true;
      } catch (error) {
        if (!isRegistryError(error)) throw error;
        if (error.kind === 'aborted' || signal.aborted) return false;
        if (error.kind === 'unreachable') {
          attempt += 1;
          this.#registrationFailures = attempt;
          this.#lastError = error.describe();
          const waitMs = fullJitterDelay(attempt - 1, this.#backoff, this.#random);
          this.#log.warn(
            { component: 'registry', attempt, retryInMs: waitMs, error: error.describe() },
            'registry unreachable; registration will be retried',
          );
          this.#publish();
          if (!(await sleep(waitMs, signal))) return false;
          continue;
        }
        await this.#markInvalid(error.kind === 'duplicate' ? 'organization_already_registered' : 'registration_rejected', error, {
          persist: false,
        });
        return false;
      }
    }
    return false;
  }

  async #heartbeatLoop(signal: AbortSignal, firstDelay: number): Promise<void> {
    const client = this.#requireClient();
    let delay = firstDelay;
    // While unreachable, never wait longer than the normal interval between probes.
    const retryPolicy: BackoffPolicy = {
      initialMs: Math.min(this.#backoff.initialMs, this.#heartbeatIntervalMs),
      maxMs: Math.min(this.#backoff.maxMs, this.#heartbeatIntervalMs),
    };
    while (!signal.aborted && this.#state === 'registered') {
      if (!(await sleep(delay, signal))) return;
      const record = this.#record;
      if (this.#state !== 'registered' || record === null) return;
      try {
        await client.heartbeat(credentialsOf(record), this.#options.endpointUrl, { signal });
        const failuresBefore = record.consecutiveFailures;
        const endpointChanged = record.endpointUrl !== this.#options.endpointUrl;
        record.lastHeartbeatAt = this.#now().toISOString();
        record.consecutiveFailures = 0;
        record.lastError = null;
        record.endpointUrl = this.#options.endpointUrl;
        this.#lastError = null;
        this.#staleReported = false;
        if (failuresBefore > 0) {
          this.#log.info({ component: 'registry', registration: ref(record.registrationId), failures: failuresBefore }, 'registry reachable again; heartbeat accepted');
          this.#wakeProviders();
        } else {
          this.#log.debug({ component: 'registry', registration: ref(record.registrationId) }, 'heartbeat accepted');
        }
        if (endpointChanged) {
          this.#log.info({ component: 'registry', endpointUrl: this.#options.endpointUrl }, 'registry now lists the new endpoint URL');
        }
        await this.#persistRecord();
        delay = this.#heartbeatIntervalMs;
      } catch (error) {
        if (!isRegistryError(error)) throw error;
        if (error.kind === 'aborted' || signal.aborted) return;
        if (error.kind === 'unauthorized') {
          await this.#markInvalid('unauthorized', error, { persist: true });
          return;
        }
        record.consecutiveFailures += 1;
        record.lastError = error.describe();
        this.#lastError = record.lastError;
        const fields = {
          component: 'registry',
          registration: ref(record.registrationId),
          consecutiveFailures: record.consecutiveFailures,
          error: error.describe(),
        };
        if (error.kind === 'unreachable') {
          delay = fullJitterDelay(record.consecutiveFailures - 1, retryPolicy, this.#random);
          this.#log.warn({ ...fields, retryInMs: delay }, 'heartbeat failed: registry unreachable; retrying with backoff');
        } else {
          delay = this.#heartbeatIntervalMs;
          this.#log.error({ ...fields, retryInMs: delay }, 'the registry refused the heartbeat');
        }
        this.#reportStaleness(record);
        await this.#persistRecord();
      }
      // Reconcile the provider list every heartbeat: catches roster changes made by other processes.
      if (this.#state === 'registered' && !signal.aborted) void this.refreshProviders();
    }
  }

  #reportStaleness(record: RegistrationRecord): void {
    if (this.#staleReported) return;
    const since = Date.parse(record.lastHeartbeatAt ?? record.registeredAt);
    if (!Number.isFinite(since) || this.#now().getTime() - since < REGISTRY_STALE_AFTER_MS) return;
    this.#staleReported = true;
    this.#log.error(
      { component: 'registry', registration: ref(record.registrationId), lastHeartbeatAt: record.lastHeartbeatAt },
      'no heartbeat got through for 5 minutes: Axon now lists this endpoint as stale and refuses patients a grant (ENDPOINT_UNAVAILABLE) until one does',
    );
  }

  // ---------------------------------------------------------------- background: providers

  async #providerLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (this.#state !== 'registered' || this.#desired.size === 0) {
        await this.#idle(signal);
        continue;
      }
      const npi = this.#nextProviderNpi();
      const op = this.#desired.get(npi);
      if (op === undefined) continue;
      let outcome: Outcome;
      try {
        outcome = await this.#attemptProvider(npi, op, signal);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.#log.error({ component: 'registry', npi, error: message }, 'unexpected failure while updating a provider in the registry');
        outcome = 'unreachable';
      }
      this.#release(npi);
      if (outcome === 'stopped') return;
      if (outcome === 'unreachable') {
        failures += 1;
        await this.#idle(signal, fullJitterDelay(failures - 1, this.#backoff, this.#random));
      } else {
        failures = 0;
      }
    }
  }

  /** Someone waiting on an npi goes first; otherwise insertion order. */
  #nextProviderNpi(): string {
    for (const npi of this.#desired.keys()) if (this.#waiters.has(npi)) return npi;
    return this.#desired.keys().next().value as string;
  }

  async #attemptProvider(npi: string, op: DesiredOp, signal: AbortSignal): Promise<Outcome> {
    const client = this.#requireClient();
    const record = this.#record;
    if (record === null) return 'stopped';
    const stillWanted = (): boolean => this.#desired.get(npi) === op;
    try {
      if (op.op === 'register') await client.registerProvider(credentialsOf(record), op.provider, { signal });
      else await client.deleteProvider(credentialsOf(record), npi, { signal });
      if (stillWanted()) await this.#providerDone(npi, op, 'accepted');
      return 'done';
    } catch (error) {
      if (!isRegistryError(error)) throw error;
      if (error.kind === 'aborted' || signal.aborted) return 'stopped';
      switch (error.kind) {
        case 'unauthorized':
          if (stillWanted()) await this.#setProvider(npi, op.op === 'register' ? 'pending' : 'removing', error.describe());
          await this.#markInvalid('unauthorized', error, { persist: true });
          return 'done';
        case 'duplicate':
          if (op.op === 'register') {
            if (stillWanted()) await this.#providerDone(npi, op, 'already registered');
            return 'done';
          }
          break;
        case 'unreachable':
          if (stillWanted()) await this.#setProvider(npi, op.op === 'register' ? 'pending' : 'removing', error.describe());
          this.#log.warn({ component: 'registry', npi, operation: error.operation, error: error.describe() }, 'registry unreachable; provider change will be retried');
          return 'unreachable';
        default:
          break;
      }
      // Refused: retrying the same request would only be refused again.
      if (stillWanted()) {
        this.#desired.delete(npi);
        if (op.op === 'register') this.#rejectedAs.set(npi, fingerprint(op.provider));
        await this.#setProvider(npi, op.op === 'register' ? 'rejected' : 'removing', error.describe());
        this.#log.error({ component: 'registry', npi, operation: error.operation, error: error.describe() }, 'the registry refused a provider change');
        await this.#audit(op.op === 'register' ? 'registry.provider_rejected' : 'registry.provider_removal_refused', {
          npi,
          registryStatus: error.registryStatus,
          registryError: error.registryError,
        });
      }
      return 'done';
    }
  }

  async #providerDone(npi: string, op: DesiredOp, how: string): Promise<void> {
    this.#desired.delete(npi);
    const state = op.op === 'register' ? 'registered' : 'removed';
    await this.#setProvider(npi, state, null);
    this.#log.info({ component: 'registry', npi, how }, op.op === 'register' ? 'provider listed in the registry' : 'provider removed from the registry');
    await this.#audit(op.op === 'register' ? 'registry.provider_registered' : 'registry.provider_removed', { npi });
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

  #wakeProviders(): void {
    if (this.#wake !== null) this.#wake();
    else this.#wakePending = true;
  }

  async #awaitAttempt(npi: string): Promise<ProviderStatus> {
    if (this.#controller === null || this.#state !== 'registered' || !this.#desired.has(npi)) return this.#providerStatus(npi);
    await new Promise<void>((resolve) => {
      const list = this.#waiters.get(npi) ?? [];
      list.push(resolve);
      this.#waiters.set(npi, list);
      this.#wakeProviders();
    });
    return this.#providerStatus(npi);
  }

  #release(npi: string): void {
    const list = this.#waiters.get(npi);
    this.#waiters.delete(npi);
    for (const resolve of list ?? []) resolve();
  }

  #releaseAll(): void {
    for (const npi of [...this.#waiters.keys()]) this.#release(npi);
  }

  #providerStatus(npi: string): ProviderStatus {
    const state = this.#providers.get(npi);
    return { npi, state: state?.state ?? 'pending', lastError: state?.lastError ?? null };
  }

  // ---------------------------------------------------------------- faults, persistence, audit

  async #markInvalid(reason: InvalidReason, error: RegistryError | null, options: { persist: boolean }): Promise<void> {
    if (this.#state === 'invalid') return;
    this.#state = 'invalid';
    const record = this.#record;
    const describe = error?.describe() ?? null;
    this.#lastError = describe ?? this.#lastError;
    this.#remedy = remedyFor(reason, {
      organizationNpi: this.#options.organization.npi,
      registryUrl: this.#options.registryUrl,
      storedRegistryUrl: record?.registryUrl ?? null,
      storedNpi: record?.organizationNpi ?? null,
      detail: describe,
    });
    if (reason === 'registry_changed') this.#lastError = 'the stored registration belongs to another registry URL or organization NPI';
    if (record !== null && options.persist) {
      record.status = 'invalid';
      record.lastError = this.#lastError;
      await this.#persistRecord();
    }
    this.#releaseAll();
    const registration = record ? ref(record.registrationId) : null;
    this.#log.error(
      { component: 'registry', reason, registration, operation: error?.operation ?? null, registryStatus: error?.registryStatus ?? null, remedy: this.#remedy },
      'registry registration is not usable; heartbeats stopped until an operator acts',
    );
    this.#publish();
    await this.#audit('registry.registration_invalid', {
      reason,
      registration,
      operation: error?.operation ?? null,
      registryStatus: error?.registryStatus ?? null,
      registryError: error?.registryError ?? null,
      remedy: this.#remedy,
    });
  }

  /** Loads the stored registration and provider states once; false (and `invalid`) when unreadable. */
  #ensureLoaded(): Promise<boolean> {
    if (this.#loading !== null) return this.#loading;
    const loading = (async (): Promise<boolean> => {
      try {
        const [record, providers] = await Promise.all([this.#options.store.load(), this.#options.store.loadProviderStates()]);
        this.#record = record;
        for (const [npi, state] of providers) {
          this.#providers.set(npi, state);
          // A removal survives restarts; a pending registration waits for syncProviders to bring its details.
          if (state.state === 'removing' && !this.#desired.has(npi)) this.#desired.set(npi, { op: 'remove' });
        }
        if (record?.status === 'invalid') {
          this.#state = 'invalid';
          this.#lastError = record.lastError;
          this.#remedy = remedyFor('unauthorized', {
            organizationNpi: this.#options.organization.npi,
            registryUrl: this.#options.registryUrl,
            storedRegistryUrl: record.registryUrl,
            storedNpi: record.organizationNpi,
            detail: record.lastError,
          });
          this.#log.error(
            { component: 'registry', registration: ref(record.registrationId), remedy: this.#remedy },
            'the stored registry registration was marked invalid earlier; not contacting the registry',
          );
        }
        return true;
      } catch (error) {
        // Not retried automatically: an unreadable secret store needs an operator (see remedy).
        const message = error instanceof Error ? error.message : String(error);
        this.#lastError = `cannot read the stored registration: ${message}`;
        if (this.#state !== 'disabled') {
          this.#state = 'invalid';
          this.#remedy = remedyFor('state_unreadable', {
            organizationNpi: this.#options.organization.npi,
            registryUrl: this.#options.registryUrl,
            storedRegistryUrl: null,
            storedNpi: null,
            detail: message,
          });
        }
        this.#log.error({ component: 'registry', error: message, remedy: this.#remedy }, 'cannot read the stored registry registration');
        this.#publish();
        await this.#audit('registry.registration_invalid', { reason: 'state_unreadable', remedy: this.#remedy });
        return false;
      }
    })();
    this.#loading = loading;
    return loading;
  }

  async #persistRecord(): Promise<void> {
    const record = this.#record;
    if (record === null) return;
    this.#publish();
    try {
      await this.#options.store.save({ ...record });
    } catch (error) {
      // The credentials stay in memory and are saved again with the next heartbeat; if the
      // Neuron restarts before that, they are lost, which is why this is an error.
      this.#log.error(
        { component: 'registry', registration: ref(record.registrationId), error: error instanceof Error ? error.message : String(error) },
        'could not persist the registry registration; will try again with the next heartbeat',
      );
    }
  }

  async #setProvider(npi: string, state: ProviderRegistryStateName, lastError: string | null): Promise<void> {
    const value: ProviderRegistryState = { npi, state, lastError, updatedAt: this.#now().toISOString() };
    this.#providers.set(npi, value);
    this.#publish();
    try {
      await this.#options.store.saveProviderState(npi, value);
    } catch (error) {
      this.#log.error({ component: 'registry', npi, error: error instanceof Error ? error.message : String(error) }, 'could not persist a provider registry state');
    }
  }

  /**
   * Saves a snapshot of status() for other processes (store.saveStatus), in the background and in
   * order. While one save is queued, further calls add nothing: the queued save reads status()
   * when it runs, so it already carries the latest state.
   */
  #publish(): void {
    const store = this.#options.store;
    if (store.saveStatus === undefined || this.#publishQueued) return;
    this.#publishQueued = true;
    this.#publishing = this.#publishing.then(async () => {
      this.#publishQueued = false;
      try {
        await store.saveStatus?.({ ...this.status(), updatedAt: this.#now().toISOString() });
      } catch (error) {
        this.#log.warn({ component: 'registry', error: error instanceof Error ? error.message : String(error) }, 'could not save the registry status for other processes');
      }
    });
  }

  async #audit(type: string, details: Record<string, unknown>): Promise<void> {
    if (this.#options.audit === undefined) return;
    try {
      await this.#options.audit({ type, details });
    } catch (error) {
      this.#log.error({ component: 'registry', auditType: type, error: error instanceof Error ? error.message : String(error) }, 'could not record a registry audit event');
    }
  }

  #requireClient(): AxonClient {
    if (this.#client === null) throw new NeuronError('NOT_READY', { message: 'The registry integration is disabled' });
    return this.#client;
  }

  async #guard(task: string, work: Promise<void>): Promise<void> {
    try {
      await work;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#lastError = `internal error in the registry ${task} task: ${message}`;
      this.#log.error({ component: 'registry', task, error: message }, 'registry background task failed unexpectedly');
    }
  }
}

// ------------------------------------------------------------------ helpers (pure)

/** A short, stable, non-reversible reference to a registration id, for logs and audit. */
export function registrationRef(registrationId: string): string {
  return createHash('sha256').update(registrationId).digest('hex').slice(0, 12);
}
const ref = registrationRef;

function credentialsOf(record: RegistrationRecord): RegistryCredentials {
  return { registrationId: record.registrationId, bearerToken: record.bearerToken };
}

async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await sleepFor(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || hostname.startsWith('127.');
}

/** Identifies a provider's details, to tell a resubmission of the same refused entry from a corrected one. */
function fingerprint(provider: ProviderInput): string {
  return JSON.stringify([provider.npi, provider.name, provider.types, provider.specialty ?? null, provider.credentials ?? null]);
}

function copyProvider(provider: ProviderInput): ProviderInput {
  return structuredClone(provider);
}

function validateProvider(provider: ProviderInput, at: string): void {
  const errors: Array<{ path: string; message: string }> = [];
  if (typeof provider.npi !== 'string' || !NPI_SHAPE.test(provider.npi)) errors.push({ path: `${at}.npi`, message: 'must be a ten-digit NPI' });
  if (typeof provider.name !== 'string' || provider.name.trim() === '') errors.push({ path: `${at}.name`, message: 'is required' });
  if (!Array.isArray(provider.types) || provider.types.length === 0 || provider.types.some((type) => typeof type !== 'string' || type === '')) {
    errors.push({ path: `${at}.types`, message: 'must list at least one provider type' });
  }
  if (errors.length > 0) throw new NeuronError('VALIDATION_FAILED', { errors });
}

function validateOptions(options: RegistryServiceOptions, heartbeatIntervalMs: number, backoff: BackoffPolicy): void {
  const errors: Array<{ path: string; message: string }> = [];
  if (!Number.isFinite(heartbeatIntervalMs) || heartbeatIntervalMs <= 0 || heartbeatIntervalMs >= REGISTRY_STALE_AFTER_MS) {
    errors.push({ path: 'registry.heartbeat_interval_ms', message: `must be above 0 and below the registry's ${REGISTRY_STALE_AFTER_MS} ms staleness window` });
  }
  if (!Number.isFinite(backoff.initialMs) || backoff.initialMs <= 0) errors.push({ path: 'registry.backoff_initial_ms', message: 'must be above 0' });
  if (!Number.isFinite(backoff.maxMs) || backoff.maxMs < backoff.initialMs) {
    errors.push({ path: 'registry.backoff_max_ms', message: 'must be at least registry.backoff_initial_ms' });
  }
  try {
    const registry = new URL(options.registryUrl);
    if (registry.protocol !== 'http:' && registry.protocol !== 'https:') throw new Error('protocol');
  } catch {
    errors.push({ path: 'registry.url', message: "must be the registry's http(s) URL" });
  }
  try {
    const endpoint = new URL(options.endpointUrl);
    if (endpoint.protocol !== 'ws:' && endpoint.protocol !== 'wss:') throw new Error('protocol');
    if (!endpoint.pathname.endsWith('/ws/handshake')) throw new Error('path');
  } catch {
    errors.push({ path: 'endpointUrl', message: 'must be the full public ws(s)://…/ws/handshake URL' });
  }
  const organization = options.organization;
  if (typeof organization?.npi !== 'string' || !NPI_SHAPE.test(organization.npi)) errors.push({ path: 'organization.npi', message: 'must be a ten-digit NPI' });
  if (typeof organization?.name !== 'string' || organization.name.trim() === '') errors.push({ path: 'organization.name', message: 'is required' });
  if (typeof organization?.type !== 'string' || organization.type.trim() === '') errors.push({ path: 'organization.type', message: 'is required' });
  if (errors.length > 0) throw new NeuronError('VALIDATION_FAILED', { errors });
}

export interface RemedyContext {
  organizationNpi: string;
  registryUrl: string;
  storedRegistryUrl: string | null;
  storedNpi: string | null;
  detail: string | null;
}

/** What the operator has to do about a registration that cannot be used. Pure. */
export function remedyFor(reason: InvalidReason, context: RemedyContext): string {
  switch (reason) {
    case 'unauthorized':
      return (
        'The registry no longer accepts this Neuron\'s registration (it answered 401: the token was revoked or the registration was removed). ' +
        'Tokens are never reissued, so this will not fix itself and the Neuron has stopped heartbeating; it keeps serving patients who reach it, ' +
        'but the registry refuses patients a grant once the endpoint is stale. ' +
        'Contact the registry operator with the registration id shown in the registry status. If they confirm it is gone, have them remove the organization entry, ' +
        'then stop the Neuron, run `neuron registry reset --yes` and start it again to register anew.'
      );
    case 'organization_already_registered':
      return (
        `Organization NPI ${context.organizationNpi} is already registered in the registry, but this Neuron holds no credentials for it ` +
        '(the stored registration was lost, or another installation registered it). Tokens are never reissued: restore the registry state from a backup, ' +
        'or ask the registry operator to remove the existing entry, then restart the Neuron.'
      );
    case 'registration_rejected':
      return (
        `The registry refused to register the organization${context.detail ? ` (${context.detail})` : ''}. ` +
        'Check organization.npi (ten digits passing the Luhn check), organization.name and organization.type in the configuration, then restart the Neuron.'
      );
    case 'registry_changed':
      return (
        `The stored registration belongs to registry ${context.storedRegistryUrl ?? '?'} for organization NPI ${context.storedNpi ?? '?'}, ` +
        `but the configuration now says registry ${context.registryUrl} and NPI ${context.organizationNpi}. ` +
        'Put the previous values back, or stop the Neuron, run `neuron registry reset --yes` and start it again to register anew (the old entry stays in the old registry).'
      );
    case 'state_unreadable':
      return (
        `The stored registry registration cannot be read (${context.detail ?? 'unknown error'}). Repair or restore it from a backup and restart the Neuron. ` +
        'Do not delete it: the registry never reissues a token, so registering again needs the registry operator to remove the old entry first.'
      );
  }
}
