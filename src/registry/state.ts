/**
 * What the registry integration persists, behind a small interface: the Neuron keeps it in its
 * database (store.ts, `DatabaseRegistryStateStore`), shared by every instance; the service's tests
 * use an in-memory one (test/helpers/registry-state.ts).
 *
 * The registration id and bearer token are durable secrets: Axon registers an organization NPI
 * once and never reissues a token. Whatever implements `RegistryStateStore` must keep them as
 * carefully as the database does (durable, never logged, never returned by status or an API).
 */
import type { RegistryStatusSnapshot } from './types.ts';

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

export function isRegistrationRecord(value: unknown): value is RegistrationRecord {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record['registrationId'] === 'string' &&
    typeof record['bearerToken'] === 'string' &&
    typeof record['registryUrl'] === 'string' &&
    typeof record['organizationNpi'] === 'string' &&
    typeof record['endpointUrl'] === 'string' &&
    (record['status'] === 'registered' || record['status'] === 'invalid')
  );
}
