/**
 * The Neuron's presence in the Axon registry: register the organization once, keep its endpoint
 * marked reachable with heartbeats, and keep the registry's provider list in step with ours.
 * This class is the face the rest of the Neuron sees; the work is done by its parts,
 * `Registration` (registration.ts: registration and heartbeats), `ProviderSync`
 * (provider-sync.ts: the provider list) and `AgentCardPublisher` (card-publisher.ts: what the
 * organization offers), which share the settings resolved here.
 *
 * Everything runs in the background: `start()` returns at once, a registry that is down at first
 * boot is retried with exponential backoff and full jitter until it answers, and an outage during
 * heartbeats is retried the same way and recovers on its own. Patients keep being served
 * meanwhile; nothing here blocks the rest of the Neuron.
 *
 * Faults that never fix themselves (a 401, an NPI already registered without our credentials, a
 * refused registration, unreadable stored credentials) move the service to `invalid`: heartbeats
 * stop, the fault is logged at error level, audited as `registry.registration_invalid`, and
 * `status()` carries an operator remedy (remedies.ts). No silent retry loop.
 */
import {
  DEFAULT_REGISTRY_BACKOFF_INITIAL_MS,
  DEFAULT_REGISTRY_BACKOFF_MAX_MS,
  DEFAULT_REGISTRY_HEARTBEAT_INTERVAL_MS,
  DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS,
} from '../../foundation/config/schema.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { AxonClient } from './client.ts';
import { AgentCardPublisher } from './card-publisher.ts';
import { ProviderSync } from './provider-sync.ts';
import { Registration } from './registration.ts';
import { isLoopback, REGISTRY_STALE_AFTER_MS, registrationRef, validateOptions } from './support.ts';
import type { ProviderInput, ProviderStatus, RegistryRuntime, RegistryServiceOptions, RegistryStatus } from './types.ts';

export class RegistryService {
  readonly #runtime: RegistryRuntime;
  readonly #registration: Registration;
  readonly #providers: ProviderSync;
  readonly #card: AgentCardPublisher | null;
  #controller: AbortController | null = null;
  #tasks: Promise<void>[] = [];
  #publishing: Promise<void> = Promise.resolve();
  #publishQueued = false;

  constructor(options: RegistryServiceOptions) {
    const enabled = options.enabled ?? true;
    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_REGISTRY_HEARTBEAT_INTERVAL_MS;
    const backoff = {
      initialMs: options.backoff?.initialMs ?? DEFAULT_REGISTRY_BACKOFF_INITIAL_MS,
      maxMs: options.backoff?.maxMs ?? DEFAULT_REGISTRY_BACKOFF_MAX_MS,
    };
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REGISTRY_REQUEST_TIMEOUT_MS;
    if (enabled) validateOptions(options, heartbeatIntervalMs, backoff);
    this.#runtime = {
      options,
      client: enabled ? new AxonClient({ baseUrl: options.registryUrl, requestTimeoutMs }) : null,
      log: options.logger,
      now: options.now ?? (() => new Date()),
      random: options.random ?? Math.random,
      backoff,
      heartbeatIntervalMs,
      publish: () => this.#publish(),
      audit: (type, details) => this.#audit(type, details),
    };
    this.#registration = new Registration({
      runtime: this.#runtime,
      enabled,
      hooks: {
        providersLoaded: (states) => this.#providers.load(states),
        wakeProviders: () => {
          this.#providers.wake();
          this.#card?.wake();
        },
        refreshProviders: () => this.#providers.refresh(),
        releaseWaiters: () => this.#providers.releaseAll(),
      },
    });
    this.#card =
      options.agentCard !== undefined && options.roster !== undefined
        ? new AgentCardPublisher({ runtime: this.#runtime, registration: this.#registration, card: options.agentCard })
        : null;
    this.#providers = new ProviderSync({
      runtime: this.#runtime,
      registration: this.#registration,
      running: () => this.#controller !== null,
      ...(this.#card !== null ? { rosterRead: this.#card.rosterRead.bind(this.#card) } : {}),
    });
    if (enabled) this.#warnAboutSettings(heartbeatIntervalMs, requestTimeoutMs);
  }

  #warnAboutSettings(heartbeatIntervalMs: number, requestTimeoutMs: number): void {
    const { log, options } = this.#runtime;
    if (heartbeatIntervalMs + requestTimeoutMs >= REGISTRY_STALE_AFTER_MS) {
      log.warn(
        { component: 'registry', heartbeatIntervalMs, requestTimeoutMs },
        'heartbeat interval plus request timeout reaches the 5-minute staleness window; one slow heartbeat can mark the endpoint stale',
      );
    }
    const registry = new URL(options.registryUrl);
    if (registry.protocol === 'http:' && !isLoopback(registry.hostname)) {
      log.warn(
        { component: 'registry', registryUrl: options.registryUrl },
        'registry.url is plain http: the bearer token crosses the network unencrypted',
      );
    }
  }

  /** Starts the background work and returns at once; safe to call twice. */
  async start(): Promise<void> {
    if (this.#controller !== null) return;
    if (this.#runtime.client === null) {
      this.#runtime.log.info({ component: 'registry' }, 'registry integration disabled; the organization is not listed in Axon');
      return;
    }
    const controller = new AbortController();
    this.#controller = controller;
    this.#tasks = [
      this.#guard('registration', this.#registration.run(controller.signal)),
      this.#guard('providers', this.#providers.loop(controller.signal)),
      ...(this.#card !== null ? [this.#guard('agent card', this.#card.loop(controller.signal))] : []),
    ];
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
    this.#providers.wake();
    this.#providers.releaseAll();
    await Promise.allSettled(this.#tasks);
    this.#tasks = [];
    await this.#providers.refreshing?.catch(() => undefined);
    this.#registration.stopped();
    this.#publish();
    await this.#publishing;
    this.#runtime.log.info({ component: 'registry' }, 'registry client stopped');
  }

  /**
   * Forgets the stored registration and provider states so the next start registers again.
   * Only useful once the registry operator has removed the old entry (an NPI registers once).
   */
  async reset(): Promise<void> {
    if (this.#controller !== null) throw new NeuronError('CONFLICT', { message: 'Stop the registry service before resetting it' });
    await this.#runtime.options.store.clear();
    const previous = this.#registration.record;
    this.#registration.forget();
    this.#providers.clear();
    const registration = previous ? registrationRef(previous.registrationId) : null;
    this.#runtime.log.warn({ component: 'registry', registration }, 'stored registry registration cleared');
    await this.#audit('registry.reset', { registration });
    this.#publish();
    await this.#publishing;
  }

  status(): RegistryStatus {
    const registration = this.#registration;
    const record = registration.record;
    return {
      state: registration.state,
      registered: record !== null && registration.state === 'registered',
      registrationId: record?.registrationId ?? null,
      registryUrl: this.#runtime.options.registryUrl,
      endpointUrl: this.#runtime.options.endpointUrl,
      lastHeartbeatAt: record?.lastHeartbeatAt ?? null,
      consecutiveFailures: registration.consecutiveFailures,
      lastError: registration.lastError,
      remedy: registration.remedy,
      running: this.#controller !== null,
      providers: this.#providers.statuses(),
    };
  }

  /**
   * Registers a provider (idempotent: a provider the registry already holds counts as done).
   * Resolves with the provider's status after the first attempt, or at once with `pending` when
   * the Neuron is not registered or not running; pending work continues in the background.
   */
  registerProvider(provider: ProviderInput): Promise<ProviderStatus> {
    return this.#providers.register(provider);
  }

  /** Removes a provider from the registry (the registry may keep the entry). Same timing as registerProvider. */
  removeProvider(npi: string): Promise<ProviderStatus> {
    return this.#providers.remove(npi);
  }

  /**
   * Makes the registry's provider list match `providers`: registers the ones not yet registered
   * and removes the ones we registered before that are no longer listed. Returns at once with the
   * providers' states; the requests run in the background.
   */
  syncProviders(providers: ProviderInput[]): Promise<ProviderStatus[]> {
    return this.#providers.sync(providers, { keepRejected: false });
  }

  /**
   * Reads the roster (option `roster`) and reconciles the registry's provider list with it, in the
   * background like `syncProviders`. Concurrent calls share one pass, plus one more pass when a
   * call arrives during it, so a burst of changes costs at most two roster reads. Never throws: a
   * roster that cannot be read is logged and tried again at the next heartbeat.
   */
  refreshProviders(): Promise<void> {
    return this.#providers.refresh();
  }

  /**
   * Saves a snapshot of status() for other processes (store.saveStatus), in the background and in
   * order. While one save is queued, further calls add nothing: the queued save reads status()
   * when it runs, so it already carries the latest state.
   */
  #publish(): void {
    const store = this.#runtime.options.store;
    if (store.saveStatus === undefined || this.#publishQueued) return;
    this.#publishQueued = true;
    this.#publishing = this.#publishing.then(async () => {
      this.#publishQueued = false;
      try {
        await store.saveStatus?.({ ...this.status(), updatedAt: this.#runtime.now().toISOString() });
      } catch (error) {
        this.#runtime.log.warn(
          { component: 'registry', error: error instanceof Error ? error.message : String(error) },
          'could not save the registry status for other processes',
        );
      }
    });
  }

  async #audit(type: string, details: Record<string, unknown>): Promise<void> {
    const audit = this.#runtime.options.audit;
    if (audit === undefined) return;
    try {
      await audit({ type, details });
    } catch (error) {
      this.#runtime.log.error(
        { component: 'registry', auditType: type, error: error instanceof Error ? error.message : String(error) },
        'could not record a registry audit event',
      );
    }
  }

  async #guard(task: string, work: Promise<void>): Promise<void> {
    try {
      await work;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#registration.reportInternalError(`internal error in the registry ${task} task: ${message}`);
      this.#runtime.log.error({ component: 'registry', task, error: message }, 'registry background task failed unexpectedly');
    }
  }
}
