/**
 * The organization's registration with the Axon registry and its heartbeats: register once (an
 * NPI registers once and its token is never reissued), then keep the endpoint marked reachable.
 * A registry that is down is retried with backoff until it answers; faults that never fix
 * themselves move the registration to `invalid` with an operator remedy (remedies.ts).
 *
 * The registration id and bearer token never reach a log line or an audit event; logs carry
 * `registrationRef`, a short hash of the id.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import { retryDelayMs, type RetryPolicy } from '../../foundation/outbound/index.ts';
import type { AxonClient } from './client.ts';
import { isRegistryError, type RegistryError } from './errors.ts';
import { remedyFor, type InvalidReason, type RemedyContext } from './remedies.ts';
import type { ProviderRegistryState, RegistrationRecord } from './state.ts';
import { credentialsOf, REGISTRY_STALE_AFTER_MS, registrationRef as ref, sameUrl, sleep } from './support.ts';
import type { RegistryRuntime, RegistryState } from './types.ts';

/** What the registration tells the provider side as it goes (provider-sync.ts). */
export interface RegistrationHooks {
  /** The stored provider states, read together with the registration. */
  providersLoaded(states: Map<string, ProviderRegistryState>): void;
  /** Registered (or the registry is reachable again): queued provider changes may go now. */
  wakeProviders(): void;
  /** Reconcile the registry's provider list with the roster. */
  refreshProviders(): Promise<void>;
  /** The registration became unusable: nobody waits for a provider attempt any longer. */
  releaseWaiters(): void;
}

export class Registration {
  readonly #runtime: RegistryRuntime;
  readonly #hooks: RegistrationHooks;
  #state: RegistryState;
  #record: RegistrationRecord | null = null;
  #loading: Promise<boolean> | null = null;
  #failures = 0;
  #lastError: string | null = null;
  #remedy: string | null = null;
  #staleReported = false;

  constructor(options: { runtime: RegistryRuntime; hooks: RegistrationHooks; enabled: boolean }) {
    this.#runtime = options.runtime;
    this.#hooks = options.hooks;
    this.#state = options.enabled ? 'unregistered' : 'disabled';
  }

  get state(): RegistryState {
    return this.#state;
  }

  get record(): RegistrationRecord | null {
    return this.#record;
  }

  /** Failed attempts in a row: of the registration request, or of heartbeats once registered. */
  get consecutiveFailures(): number {
    return this.#record !== null ? this.#record.consecutiveFailures : this.#failures;
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  get remedy(): string | null {
    return this.#remedy;
  }

  /** An unexpected failure of a background task, shown in status. */
  reportInternalError(message: string): void {
    this.#lastError = message;
  }

  /** A registration request cut short by stop() leaves the state it started from. */
  stopped(): void {
    if (this.#state === 'registering') this.#state = 'unregistered';
  }

  /** Forgets everything loaded or learnt (after the store was cleared by an operator reset). */
  forget(): void {
    this.#record = null;
    this.#loading = null;
    this.#failures = 0;
    this.#lastError = null;
    this.#remedy = null;
    if (this.#state !== 'disabled') this.#state = 'unregistered';
  }

  /** Registers if needed, then heartbeats until stopped or invalid. */
  async run(signal: AbortSignal): Promise<void> {
    if (!(await this.ensureLoaded())) return;
    if (signal.aborted || this.#state === 'invalid') return;
    // Shows the roster's providers as pending while registration is still under way.
    void this.#hooks.refreshProviders();
    let firstDelay = this.#runtime.heartbeatIntervalMs;
    if (this.#record === null) {
      if (!(await this.#registerLoop(signal))) return;
      // The roster may have changed during a long first-boot outage.
      void this.#hooks.refreshProviders();
    } else {
      const record = this.#record;
      const options = this.#runtime.options;
      if (!sameUrl(record.registryUrl, options.registryUrl) || record.organizationNpi !== options.organization.npi) {
        await this.markInvalid('registry_changed', null, { persist: false });
        return;
      }
      this.#state = 'registered';
      this.#runtime.log.info(
        { component: 'registry', registration: ref(record.registrationId), registryUrl: record.registryUrl },
        'using the stored registry registration',
      );
      // Announce the (possibly new) endpoint right away instead of one interval later.
      firstDelay = 0;
    }
    this.#hooks.wakeProviders();
    await this.#heartbeatLoop(signal, firstDelay);
  }

  async #registerLoop(signal: AbortSignal): Promise<boolean> {
    const client = requireClient(this.#runtime);
    this.#state = 'registering';
    let attempt = 0;
    while (!signal.aborted) {
      try {
        await this.#registerOnce(client, attempt + 1);
        return true;
      } catch (error) {
        if (!isRegistryError(error)) throw error;
        if (error.kind === 'aborted' || signal.aborted) return false;
        if (error.kind !== 'unreachable') {
          const reason = error.kind === 'duplicate' ? 'organization_already_registered' : 'registration_rejected';
          await this.markInvalid(reason, error, { persist: false });
          return false;
        }
        attempt += 1;
        this.#failures = attempt;
        this.#lastError = error.describe();
        const waitMs = retryDelayMs(attempt, this.#runtime.backoff, this.#runtime.random);
        this.#runtime.log.warn(
          { component: 'registry', attempt, retryInMs: waitMs, error: error.describe() },
          'registry unreachable; registration will be retried',
        );
        this.#runtime.publish();
        if (!(await sleep(waitMs, signal))) return false;
      }
    }
    return false;
  }

  async #registerOnce(client: AxonClient, attempts: number): Promise<void> {
    const { options, now, log } = this.#runtime;
    const organization = options.organization;
    // Not cancelled by stop(): the answer holds the only copy of a token the registry never
    // reissues, and abandoning a request the registry has already carried out would leave the
    // NPI registered without credentials. stop() waits for it (at most the request timeout).
    const registration = await client.registerNeuron({
      organizationNpi: organization.npi,
      organizationName: organization.name,
      organizationType: organization.type,
      endpointUrl: options.endpointUrl,
    });
    this.#record = {
      registrationId: registration.registrationId,
      bearerToken: registration.bearerToken,
      registryUrl: options.registryUrl,
      organizationNpi: organization.npi,
      endpointUrl: options.endpointUrl,
      registeredAt: now().toISOString(),
      status: 'registered',
      lastHeartbeatAt: null,
      consecutiveFailures: 0,
      lastError: null,
    };
    this.#failures = 0;
    this.#lastError = null;
    this.#state = 'registered';
    await this.persistRecord();
    const registrationRef = ref(registration.registrationId);
    log.info(
      { component: 'registry', registration: registrationRef, endpointUrl: options.endpointUrl, attempts },
      'registered with the Axon registry',
    );
    await this.#runtime.audit('registry.registered', {
      registration: registrationRef,
      registryUrl: options.registryUrl,
      endpointUrl: options.endpointUrl,
      organizationNpi: organization.npi,
    });
  }

  async #heartbeatLoop(signal: AbortSignal, firstDelay: number): Promise<void> {
    const { heartbeatIntervalMs, backoff } = this.#runtime;
    // While unreachable, never wait longer than the normal interval between probes.
    const retryPolicy: RetryPolicy = {
      initialMs: Math.min(backoff.initialMs, heartbeatIntervalMs),
      maxMs: Math.min(backoff.maxMs, heartbeatIntervalMs),
    };
    let delay = firstDelay;
    while (!signal.aborted && this.#state === 'registered') {
      if (!(await sleep(delay, signal))) return;
      const record = this.#record;
      if (this.#state !== 'registered' || record === null) return;
      const next = await this.#heartbeatOnce(record, signal, retryPolicy);
      if (next === null) return;
      delay = next;
      // Reconcile the provider list every heartbeat: catches roster changes made by other processes.
      if (this.#state === 'registered' && !signal.aborted) void this.#hooks.refreshProviders();
    }
  }

  /** One heartbeat; the delay before the next one, or null when heartbeats must stop. */
  async #heartbeatOnce(record: RegistrationRecord, signal: AbortSignal, retryPolicy: RetryPolicy): Promise<number | null> {
    const { options, log, now } = this.#runtime;
    try {
      await requireClient(this.#runtime).heartbeat(credentialsOf(record), options.endpointUrl, { signal });
    } catch (error) {
      if (!isRegistryError(error)) throw error;
      if (error.kind === 'aborted' || signal.aborted) return null;
      if (error.kind === 'unauthorized') {
        await this.markInvalid('unauthorized', error, { persist: true });
        return null;
      }
      return this.#heartbeatFailed(record, error, retryPolicy);
    }
    const failuresBefore = record.consecutiveFailures;
    const endpointChanged = record.endpointUrl !== options.endpointUrl;
    record.lastHeartbeatAt = now().toISOString();
    record.consecutiveFailures = 0;
    record.lastError = null;
    record.endpointUrl = options.endpointUrl;
    this.#lastError = null;
    this.#staleReported = false;
    if (failuresBefore > 0) {
      log.info(
        { component: 'registry', registration: ref(record.registrationId), failures: failuresBefore },
        'registry reachable again; heartbeat accepted',
      );
      this.#hooks.wakeProviders();
    } else {
      log.debug({ component: 'registry', registration: ref(record.registrationId) }, 'heartbeat accepted');
    }
    if (endpointChanged) log.info({ component: 'registry', endpointUrl: options.endpointUrl }, 'registry now lists the new endpoint URL');
    await this.persistRecord();
    return this.#runtime.heartbeatIntervalMs;
  }

  async #heartbeatFailed(record: RegistrationRecord, error: RegistryError, retryPolicy: RetryPolicy): Promise<number> {
    record.consecutiveFailures += 1;
    record.lastError = error.describe();
    this.#lastError = record.lastError;
    const fields = {
      component: 'registry',
      registration: ref(record.registrationId),
      consecutiveFailures: record.consecutiveFailures,
      error: error.describe(),
    };
    let delay: number;
    if (error.kind === 'unreachable') {
      delay = retryDelayMs(record.consecutiveFailures, retryPolicy, this.#runtime.random);
      this.#runtime.log.warn({ ...fields, retryInMs: delay }, 'heartbeat failed: registry unreachable; retrying with backoff');
    } else {
      delay = this.#runtime.heartbeatIntervalMs;
      this.#runtime.log.error({ ...fields, retryInMs: delay }, 'the registry refused the heartbeat');
    }
    this.#reportStaleness(record);
    await this.persistRecord();
    return delay;
  }

  #reportStaleness(record: RegistrationRecord): void {
    if (this.#staleReported) return;
    const since = Date.parse(record.lastHeartbeatAt ?? record.registeredAt);
    if (!Number.isFinite(since) || this.#runtime.now().getTime() - since < REGISTRY_STALE_AFTER_MS) return;
    this.#staleReported = true;
    this.#runtime.log.error(
      { component: 'registry', registration: ref(record.registrationId), lastHeartbeatAt: record.lastHeartbeatAt },
      'no heartbeat got through for 5 minutes: Axon now lists this endpoint as stale and refuses patients a grant (ENDPOINT_UNAVAILABLE) until one does',
    );
  }

  /** Stops heartbeats for good (until an operator acts): logged, audited, with a remedy in status. */
  async markInvalid(reason: InvalidReason, error: RegistryError | null, options: { persist: boolean }): Promise<void> {
    if (this.#state === 'invalid') return;
    this.#state = 'invalid';
    const record = this.#record;
    const describe = error?.describe() ?? null;
    this.#lastError = describe ?? this.#lastError;
    this.#remedy = remedyFor(reason, this.#remedyContext(record, describe));
    if (reason === 'registry_changed') this.#lastError = 'the stored registration belongs to another registry URL or organization NPI';
    if (record !== null && options.persist) {
      record.status = 'invalid';
      record.lastError = this.#lastError;
      await this.persistRecord();
    }
    this.#hooks.releaseWaiters();
    const registration = record ? ref(record.registrationId) : null;
    this.#runtime.log.error(
      {
        component: 'registry',
        reason,
        registration,
        operation: error?.operation ?? null,
        registryStatus: error?.registryStatus ?? null,
        remedy: this.#remedy,
      },
      'registry registration is not usable; heartbeats stopped until an operator acts',
    );
    this.#runtime.publish();
    await this.#runtime.audit('registry.registration_invalid', {
      reason,
      registration,
      operation: error?.operation ?? null,
      registryStatus: error?.registryStatus ?? null,
      registryError: error?.registryError ?? null,
      remedy: this.#remedy,
    });
  }

  #remedyContext(record: RegistrationRecord | null, detail: string | null): RemedyContext {
    const options = this.#runtime.options;
    return {
      organizationNpi: options.organization.npi,
      registryUrl: options.registryUrl,
      storedRegistryUrl: record?.registryUrl ?? null,
      storedNpi: record?.organizationNpi ?? null,
      detail,
    };
  }

  /** Loads the stored registration and provider states once; false (and `invalid`) when unreadable. */
  ensureLoaded(): Promise<boolean> {
    this.#loading ??= this.#load();
    return this.#loading;
  }

  async #load(): Promise<boolean> {
    const { store } = this.#runtime.options;
    try {
      const [record, providers] = await Promise.all([store.load(), store.loadProviderStates()]);
      this.#record = record;
      this.#hooks.providersLoaded(providers);
      if (record?.status === 'invalid') {
        this.#state = 'invalid';
        this.#lastError = record.lastError;
        this.#remedy = remedyFor('unauthorized', this.#remedyContext(record, record.lastError));
        this.#runtime.log.error(
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
        this.#remedy = remedyFor('state_unreadable', this.#remedyContext(null, message));
      }
      this.#runtime.log.error(
        { component: 'registry', error: message, remedy: this.#remedy },
        'cannot read the stored registry registration',
      );
      this.#runtime.publish();
      await this.#runtime.audit('registry.registration_invalid', { reason: 'state_unreadable', remedy: this.#remedy });
      return false;
    }
  }

  async persistRecord(): Promise<void> {
    const record = this.#record;
    if (record === null) return;
    this.#runtime.publish();
    try {
      await this.#runtime.options.store.save({ ...record });
    } catch (error) {
      // The credentials stay in memory and are saved again with the next heartbeat; if the
      // Neuron restarts before that, they are lost, which is why this is an error.
      this.#runtime.log.error(
        { component: 'registry', registration: ref(record.registrationId), error: error instanceof Error ? error.message : String(error) },
        'could not persist the registry registration; will try again with the next heartbeat',
      );
    }
  }
}

export function requireClient(runtime: RegistryRuntime): AxonClient {
  if (runtime.client === null) throw new NeuronError('NOT_READY', { message: 'The registry integration is disabled' });
  return runtime.client;
}
