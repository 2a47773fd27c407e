/**
 * The registry integration's public types: what it is given (options, providers) and what it
 * reports (status). Shared by the service and its two halves, registration.ts (the organization's
 * registration and heartbeats) and provider-sync.ts (the registry's provider list).
 */
import type { RetryPolicy } from '../../foundation/outbound/index.ts';
import type { AgentCard } from './agent-card.ts';
import type { AxonClient, ProviderInput } from './client.ts';

// Defined beside the wire client that sends it; exported here with the integration's other types.
export type { ProviderInput } from './client.ts';

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
  backoff?: Partial<RetryPolicy>;
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
  /**
   * Optional: the organization's agent card, rebuilt from the roster each time it is read and kept
   * in the registry while registered (card-publisher.ts). Needs `roster`.
   */
  agentCard?: AgentCardSource;
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

/**
 * What the service gives its two halves (registration.ts, provider-sync.ts): the settings it
 * resolved once, and the two side channels both report through. Internal to src/network/registry/.
 */
export interface RegistryRuntime {
  readonly options: RegistryServiceOptions;
  /** null when the integration is disabled: nothing is contacted. */
  readonly client: AxonClient | null;
  readonly log: RegistryLogger;
  readonly now: () => Date;
  readonly random: () => number;
  readonly backoff: RetryPolicy;
  readonly heartbeatIntervalMs: number;
  /** Saves status() for other processes, in the background (see RegistryService). */
  publish(): void;
  /** Records an audit event; never throws (a failure is logged). */
  audit(type: string, details: Record<string, unknown>): Promise<void>;
}

export interface AgentCardSource {
  /** The card's id in the registry (agentCardId). */
  id: string;
  /** The card for this roster, or null when the organization offers nothing (then it is deleted). */
  build(roster: readonly ProviderInput[]): AgentCard | null;
}

// What the integration persists (state.ts describes the store's duties).
export interface RegistrationRecord {
  registrationId: string;
  /** Secret. Never log it, never return it from status or an API. */
  bearerToken: string;
  /** The registry this registration belongs to; another URL means another registry. */
  registryUrl: string;
  /** The organization NPI that was registered (one registration per NPI). */
  organizationNpi: string;
  /** The handshake URL last confirmed by the registry (at registration or heartbeat). */
  endpointUrl: string;
  registeredAt: string;
  /** `invalid` once the registry refused the credentials (401); stays so across restarts. */
  status: 'registered' | 'invalid';
  lastHeartbeatAt: string | null;
  consecutiveFailures: number;
  lastError: string | null;
}

/**
 * Where one provider stands with the registry.
 * - `pending`: should be registered, not confirmed yet (registry unreachable or not registered yet)
 * - `registered`: the registry holds it (a duplicate answer counts)
 * - `rejected`: the registry refused it (for example a type outside the taxonomy); not retried
 *   until the provider is submitted again
 * - `removing`: should be removed, not confirmed yet
 * - `removed`: the registry acknowledged the removal (it may keep the entry)
 */
export type ProviderRegistryStateName = 'pending' | 'registered' | 'rejected' | 'removing' | 'removed';

export interface ProviderRegistryState {
  npi: string;
  state: ProviderRegistryStateName;
  lastError: string | null;
  updatedAt: string;
}

export interface RegistryStateStore {
  /** The stored registration, or null when this Neuron never registered. Throws when unreadable. */
  load(): Promise<RegistrationRecord | null>;
  save(record: RegistrationRecord): Promise<void>;
  loadProviderStates(): Promise<Map<string, ProviderRegistryState>>;
  saveProviderState(npi: string, state: ProviderRegistryState): Promise<void>;
  /** Forgets the registration and every provider state (operator reset; the registry keeps its entry). */
  clear(): Promise<void>;
  /**
   * Optional: keeps the latest `status()` (no secret in it) where other processes can read it, so
   * `neuron status` and other instances can show a fault such as a 401 and its remedy.
   */
  saveStatus?(status: RegistryStatusSnapshot): Promise<void>;
  loadStatus?(): Promise<RegistryStatusSnapshot | null>;
  /**
   * Optional: what the registry was last sent as the agent card (a fingerprint, `none` after a
   * deletion), so a restart knows whether a card of ours may still be listed there.
   */
  loadAgentCardFingerprint?(): Promise<string | null>;
  saveAgentCardFingerprint?(fingerprint: string): Promise<void>;
}
