/**
 * The Neuron's presence on the network, started last and stopped first by the composition root
 * (src/main.ts, step 7):
 *
 * - the Axon registry client (RegistryService over the database-backed state store), which
 *   registers the organization, heartbeats, and reconciles the registry's provider list with the
 *   active roster at every heartbeat (plus at once when `providersChanged()` is called);
 * - the mDNS advertisement on the local network (src/network/discovery).
 *
 * With several instances on one database, only the instance holding the registry lease runs the
 * registry client (see `PresenceOptions.leadership`); every instance advertises itself over mDNS.
 *
 * Neither part ever stops the Neuron from serving patients: a registry that is down, refuses us
 * or answers 401 is a status and a log line, and an mDNS failure is logged.
 */
import type { NeuronConfig } from '../../foundation/config/index.ts';
import { createDiscoveryAdvertiser, notAdvertisedReason, type DiscoveryAdvertiser, type DiscoveryLogger } from '../discovery/index.ts';
import { activeRosterForRegistry } from '../../domains/providers/index.ts';
import { LeaseStore } from '../cluster/index.ts';
import type { Storage } from '../../foundation/storage/index.ts';
import {
  DatabaseRegistryStateStore,
  RegistryService,
  registrationRef,
  type ProviderCredential,
  type ProviderInput,
  type RegistryLogger,
  type RegistryStatus,
} from '../registry/index.ts';
import { agentCardSourceFor, removeAgentCard, serveCard, type AgentCardReset, type ServedAgentCard } from './agent-card.ts';
import { readRegistryStatus, type RegistryStatusView } from './status.ts';

/** The lease the instance running the registry client holds (shared by every instance on one database). */
export const REGISTRY_LEASE_NAME = 'registry-heartbeat';
/**
 * The registry lease is timed so another instance takes over within one heartbeat interval, but
 * never from an interval shorter than this: a lease of a few hundred milliseconds could run out
 * during an ordinary event-loop or database stall and hand the client back and forth. 3 s gives a
 * lease of a bit over 2 s; only test setups use heartbeat intervals that short.
 */
export const MIN_REGISTRY_LEASE_BASIS_MS = 3_000;
/**
 * How old the database-read registry summary may get on an instance that does not run the
 * registry client before a request triggers a new read: status pages poll, and 5 s shows a fault
 * quickly without one database read per request.
 */
const SUMMARY_REFRESH_MS = 5_000;
/**
 * How old the agent card served at /.well-known/agent-card.json may get before a request rebuilds
 * it from the roster: the route is public, so an anonymous client polling it costs at most one
 * roster read per 5 s, and a roster change shows within 5 s.
 */
const AGENT_CARD_REFRESH_MS = 5_000;

/** What `GET /v1/status` and `GET /v1/organization` show (src/domains/status RegistrySummary); no secret. */
export interface RegistrySummary {
  /** unregistered, registering, registered, invalid, disabled; unknown before the first read. */
  state: string;
  registered: boolean;
  lastHeartbeatAt: string | null;
  consecutiveFailures: number;
  lastError: string | null;
  remedy: string | null;
}

export type PresenceLogger = RegistryLogger & DiscoveryLogger;

export interface PresenceAuditEvent {
  type: string;
  actor: string;
  details: Record<string, unknown>;
}

/** Who may run the registry client. `start()` resolves after the first election attempt. */
export interface Leadership {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface LeadershipCallbacks {
  onElected(): Promise<void>;
  onDeposed(): Promise<void>;
}

export interface PresenceOptions {
  config: NeuronConfig;
  storage: Pick<Storage, 'db' | 'transaction'>;
  logger: PresenceLogger;
  /** Appends to the audit log (AuditLog.record). */
  audit: (event: PresenceAuditEvent) => Promise<unknown>;
  /** The full public handshake URL (handshakeUrlFor in src/main.ts). */
  handshakeUrl: string;
  /** The public base URL (server.public_url, or the bound address); named in the agent card. */
  publicUrl: string;
  /** The Neuron's version, named in the agent card. */
  version: string;
  /** The bound port, advertised over mDNS. */
  port: number;
  /** Whether the listener speaks TLS (advertised as tls=1). */
  tls: boolean;
  /** The address the listener is bound to: mDNS publishes only addresses it answers on (none for loopback). */
  boundAddress?: string;
  /**
   * Optional: elects one instance among those sharing the database to run the registry client
   * (onElected starts it, onDeposed stops it). Without it this instance runs the client.
   */
  leadership?: (callbacks: LeadershipCallbacks) => Leadership;
}

export class Presence {
  readonly #options: PresenceOptions;
  readonly #store: DatabaseRegistryStateStore;
  #service: RegistryService | null = null;
  #leadership: Leadership | null = null;
  #advertiser: DiscoveryAdvertiser | null = null;
  #advertising: Promise<void> | null = null;
  /** Serialises starting and stopping the registry client (elections can flap). */
  #transitions: Promise<void> = Promise.resolve();
  #summary: RegistrySummary | null = null;
  #summaryReadAt = 0;
  #summaryReading: Promise<void> | null = null;
  #servedCard: { value: ServedAgentCard | null; builtAt: number } | null = null;
  #cardBuilding: Promise<ServedAgentCard | null> | null = null;

  constructor(options: PresenceOptions) {
    this.#options = options;
    this.#store = new DatabaseRegistryStateStore(options.storage);
  }

  async start(): Promise<void> {
    const { config } = this.#options;
    if (!config.registry.enabled) {
      this.#options.logger.info(
        { component: 'registry' },
        'registry integration disabled (registry.enabled is false); the organization is not listed in Axon',
      );
    } else if (this.#options.leadership !== undefined) {
      this.#leadership = this.#options.leadership({
        onElected: () => this.#transition(() => this.#startClient()),
        onDeposed: () => this.#transition(() => this.#stopClient()),
      });
      await this.#leadership.start();
    } else {
      await this.#transition(() => this.#startClient());
    }
    if (config.discovery.enabled) this.#startAdvertising();
    if (config.registry.enabled && this.#service === null) await this.#readSummary();
  }

  /** Leaves the local network first (mDNS goodbye), then stops heartbeating. */
  async stop(): Promise<void> {
    const advertiser = this.#advertiser;
    this.#advertiser = null;
    if (advertiser !== null) await advertiser.stop();
    await this.#advertising;
    const leadership = this.#leadership;
    this.#leadership = null;
    if (leadership !== null) await leadership.stop();
    await this.#transition(() => this.#stopClient());
    await this.#summaryReading;
  }

  /**
   * Tells the registry client that the roster changed (a provider added, approved, suspended,
   * updated or removed) so the registry hears of it now rather than at the next heartbeat. Cheap
   * and safe to call from anywhere, any number of times; a no-op on an instance that does not run
   * the registry client (the one that does reconciles at its next heartbeat).
   */
  providersChanged(): void {
    void this.#service?.refreshProviders();
  }

  /** The registry status for operators; never holds the bearer token. */
  registryStatus(): Promise<RegistryStatusView> {
    return readRegistryStatus(this.#options.storage, this.#options.config, this.#service?.status());
  }

  /**
   * A synchronous summary for the API (`GET /v1/status`, `GET /v1/organization`): the running
   * client's own status, or on an instance that does not run it the last database read, renewed
   * in the background once older than SUMMARY_REFRESH_MS.
   */
  registrySummary(): RegistrySummary {
    if (!this.#options.config.registry.enabled)
      return { state: 'disabled', registered: false, lastHeartbeatAt: null, consecutiveFailures: 0, lastError: null, remedy: null };
    const live = this.#service?.status();
    if (live !== undefined) {
      return {
        state: live.state,
        registered: live.registered,
        lastHeartbeatAt: live.lastHeartbeatAt,
        consecutiveFailures: live.consecutiveFailures,
        lastError: live.lastError,
        remedy: live.remedy,
      };
    }
    if (Date.now() - this.#summaryReadAt > SUMMARY_REFRESH_MS) void this.#readSummary();
    return (
      this.#summary ?? { state: 'unknown', registered: false, lastHeartbeatAt: null, consecutiveFailures: 0, lastError: null, remedy: null }
    );
  }

  #readSummary(): Promise<void> {
    this.#summaryReading ??= (async () => {
      try {
        const view = await readRegistryStatus(this.#options.storage, this.#options.config, undefined, { providers: false });
        this.#summary = {
          state: view.state,
          registered: view.state === 'registered',
          lastHeartbeatAt: view.last_heartbeat_at,
          consecutiveFailures: view.consecutive_failures,
          lastError: view.last_error,
          remedy: view.remedy,
        };
      } catch (error) {
        this.#options.logger.warn(
          { component: 'registry', error: error instanceof Error ? error.message : String(error) },
          'could not read the registry status from the database',
        );
      } finally {
        this.#summaryReadAt = Date.now();
        this.#summaryReading = null;
      }
    })();
    return this.#summaryReading;
  }

  /**
   * The organization's agent card as /.well-known/agent-card.json serves it, or null when the
   * configuration lists no capability. Rebuilt from the roster at most every AGENT_CARD_REFRESH_MS.
   */
  async servedAgentCard(): Promise<ServedAgentCard | null> {
    const cached = this.#servedCard;
    if (cached !== null && Date.now() - cached.builtAt < AGENT_CARD_REFRESH_MS) return cached.value;
    this.#cardBuilding ??= (async () => {
      try {
        const card = agentCardSourceFor(this.#options).build(await readActiveRoster(this.#options.storage, this.#options.logger));
        const value = card === null ? null : serveCard(card);
        this.#servedCard = { value, builtAt: Date.now() };
        return value;
      } finally {
        this.#cardBuilding = null;
      }
    })();
    return this.#cardBuilding;
  }

  /** The running client's own status, or null on an instance that does not run it. */
  liveRegistryStatus(): RegistryStatus | null {
    return this.#service?.status() ?? null;
  }

  /** The mDNS instance name in use (after a rename on conflict), or null when not advertising. */
  get advertisedName(): string | null {
    return this.#advertiser?.instanceName ?? null;
  }

  #transition(step: () => Promise<void>): Promise<void> {
    const next = this.#transitions.then(step);
    this.#transitions = next.catch(() => undefined);
    return next;
  }

  async #startClient(): Promise<void> {
    if (this.#service !== null) return;
    if (this.#leadership !== null)
      this.#options.logger.info({ component: 'registry' }, 'this instance now runs the registry client (holds the registry lease)');
    // A new service per term: it loads the registration afresh, as another instance may have
    // heartbeated, registered providers or been reset since.
    this.#service = createRegistryService(this.#options, this.#store, 'system', { roster: true });
    await this.#service.start();
  }

  async #stopClient(): Promise<void> {
    const service = this.#service;
    this.#service = null;
    if (service !== null && this.#leadership !== null) {
      this.#options.logger.info(
        { component: 'registry' },
        'this instance no longer runs the registry client (lease released, lost or not renewed in time)',
      );
    }
    await service?.stop();
  }

  #startAdvertising(): void {
    const { config, logger, boundAddress } = this.#options;
    const reason = notAdvertisedReason(boundAddress, config.discovery.interfaces);
    if (reason !== null) {
      logger.info({ component: 'discovery', boundAddress }, `mDNS: not advertised on the local network: ${reason}`);
      return;
    }
    try {
      this.#advertiser = createDiscoveryAdvertiser({
        instanceName: config.discovery.instance_name !== '' ? config.discovery.instance_name : config.organization.name,
        port: this.#options.port,
        organizationNpi: config.organization.npi,
        organizationName: config.organization.name,
        tls: this.#options.tls,
        interfaces: config.discovery.interfaces,
        boundAddress,
        logger,
      });
    } catch (error) {
      logger.error({ err: error }, 'mDNS: cannot advertise with these discovery settings; the Neuron runs without local discovery');
      return;
    }
    // Probing takes about a second; the Neuron does not wait for it. Failures are logged by the
    // advertiser; local discovery is a convenience, so the Neuron keeps serving without it.
    this.#advertising = this.#advertiser.start().catch(() => {
      logger.warn({}, 'mDNS: not advertised on the local network; patients can still connect with the handshake URL');
    });
  }
}

interface ServiceExtras {
  roster: boolean;
}

type RegistryServiceSettings = Omit<PresenceOptions, 'port' | 'tls' | 'boundAddress' | 'leadership' | 'publicUrl' | 'version'> &
  Partial<Pick<PresenceOptions, 'publicUrl' | 'version'>>;

function createRegistryService(
  options: RegistryServiceSettings,
  store: DatabaseRegistryStateStore,
  actor: string,
  extras: ServiceExtras,
): RegistryService {
  const { config, storage, logger } = options;
  return new RegistryService({
    enabled: config.registry.enabled,
    registryUrl: config.registry.url,
    endpointUrl: options.handshakeUrl,
    organization: { npi: config.organization.npi, name: config.organization.name, type: config.organization.type },
    heartbeatIntervalMs: config.registry.heartbeat_interval_ms,
    requestTimeoutMs: config.registry.request_timeout_ms,
    backoff: { initialMs: config.registry.backoff_initial_ms, maxMs: config.registry.backoff_max_ms },
    store,
    logger,
    audit: async (event) => {
      await options.audit({ type: event.type, actor, details: event.details });
    },
    ...(extras.roster ? { roster: () => activeRoster(storage, store, logger) } : {}),
    ...(extras.roster && options.publicUrl !== undefined && options.version !== undefined
      ? {
          agentCard: agentCardSourceFor({
            config,
            handshakeUrl: options.handshakeUrl,
            publicUrl: options.publicUrl,
            version: options.version,
          }),
        }
      : {}),
  });
}

/**
 * The providers the registry should list: every `active` provider on the roster. Also puts
 * `providers.registry_state` back in step for providers whose row was recreated.
 */
export async function activeRoster(
  storage: Pick<Storage, 'db'>,
  store: DatabaseRegistryStateStore,
  logger: PresenceLogger,
): Promise<ProviderInput[]> {
  const { providers, unregistered } = await readRoster(storage, logger);
  await store.mirrorProviderStates(unregistered);
  return providers;
}

/** The active providers, read only (for the agent card served to anyone who asks). */
async function readActiveRoster(storage: Pick<Storage, 'db'>, logger: PresenceLogger): Promise<ProviderInput[]> {
  return (await readRoster(storage, logger)).providers;
}

async function readRoster(
  storage: Pick<Storage, 'db'>,
  logger: PresenceLogger,
): Promise<{ providers: ProviderInput[]; unregistered: string[] }> {
  const rows = await activeRosterForRegistry(storage.db);
  const providers: ProviderInput[] = [];
  for (const row of rows) {
    try {
      const types = JSON.parse(row.providerTypesJson) as unknown;
      const credentials = JSON.parse(row.credentialsJson) as unknown;
      providers.push({
        npi: row.npi,
        name: row.name,
        types: Array.isArray(types) ? types.filter((type): type is string => typeof type === 'string') : [],
        ...(row.specialty !== null && row.specialty !== '' ? { specialty: row.specialty } : {}),
        ...(Array.isArray(credentials) && credentials.length > 0 ? { credentials: credentials.map(toRegistryCredential) } : {}),
      });
    } catch {
      logger.warn(
        { component: 'registry', npi: row.npi },
        'roster entry has unreadable provider types or credentials; not sent to the registry',
      );
    }
  }
  const unregistered = rows.filter((row) => row.registryState === 'unregistered').map((row) => row.npi);
  return { providers, unregistered };
}

/** Roster credentials are stored as the registry takes them (snake_case); the client wants camelCase. */
function toRegistryCredential(stored: Record<string, unknown>): ProviderCredential {
  const text = (key: string): string => (typeof stored[key] === 'string' ? (stored[key] as string) : '');
  return {
    type: text('type') as ProviderCredential['type'],
    issuer: text('issuer'),
    identifier: text('identifier'),
    status: text('status'),
    ...(typeof stored['issued_at'] === 'string' ? { issuedAt: stored['issued_at'] } : {}),
    ...(typeof stored['expires_at'] === 'string' ? { expiresAt: stored['expires_at'] } : {}),
  };
}

export interface RegisterOnceOptions {
  config: NeuronConfig;
  storage: Pick<Storage, 'db' | 'transaction'>;
  logger: PresenceLogger;
  audit: (event: PresenceAuditEvent) => Promise<unknown>;
  handshakeUrl: string;
  /** Who the audit entries name, for example `cli`. */
  actor: string;
  /** How long to keep trying while the registry is unreachable. */
  deadlineMs: number;
}

/**
 * Registers the organization now (for `neuron init`), or confirms a stored registration with one
 * heartbeat. Retries with backoff while the registry is unreachable, up to `deadlineMs`; then
 * gives up and leaves it to `neuron start`, which keeps trying. Resolves with the final status.
 */
export async function registerOnce(options: RegisterOnceOptions): Promise<RegistryStatus> {
  const store = new DatabaseRegistryStateStore(options.storage);
  const service = createRegistryService(options, store, options.actor, { roster: false });
  await service.start();
  const deadline = Date.now() + options.deadlineMs;
  try {
    for (;;) {
      const status = service.status();
      if (status.state === 'registered' || status.state === 'invalid' || Date.now() >= deadline) return status;
      // Polling the in-memory status is cheap; 50 ms keeps the command responsive.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    // Waits for the new registration to be saved before the caller closes the database.
    await service.stop();
  }
}

/** Whether some instance holds the registry lease now (then the registration must not be reset). */
export async function registryClientHolder(
  storage: Pick<Storage, 'db' | 'dialect'>,
): Promise<{ holder: string; expiresAt: string } | null> {
  // The cluster's lease store compares expiry with the database's clock, as every instance does.
  return new LeaseStore(storage).current(REGISTRY_LEASE_NAME);
}

/**
 * Forgets the stored registration and provider registry states (`neuron registry reset`), audited,
 * and deregisters the organization's agent card: a card the Neuron published is deleted from the
 * registry (one attempt; if the registry cannot be reached the card stays, and the next start
 * deletes it unless the configuration still offers services). The caller makes sure no Neuron is
 * running. Resolves with the cleared registration (never the id itself in the audit log).
 */
export async function resetRegistration(
  storage: Pick<Storage, 'db' | 'transaction'>,
  audit: (event: PresenceAuditEvent) => Promise<unknown>,
  actor: string,
  config: Pick<NeuronConfig, 'registry' | 'organization'>,
): Promise<{ registrationId: string | null; registryUrl: string | null; agentCard: AgentCardReset }> {
  const store = new DatabaseRegistryStateStore(storage);
  let registrationId: string | null = null;
  let registryUrl: string | null = null;
  try {
    const record = await store.readRegistration();
    registrationId = record?.registrationId ?? null;
    registryUrl = record?.registryUrl ?? null;
  } catch {
    // An unreadable registration is cleared all the same: that is what the operator asked for.
  }
  await store.clear();
  const agentCard = await removeAgentCard(store, registryUrl ?? (config.registry.url !== '' ? config.registry.url : null), config);
  await audit({
    type: 'registry.reset',
    actor,
    details: {
      registration: registrationId === null ? null : registrationRef(registrationId),
      registry_url: registryUrl,
      agent_card: typeof agentCard === 'string' ? agentCard : 'left',
    },
  });
  return { registrationId, registryUrl, agentCard };
}
