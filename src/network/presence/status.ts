/**
 * The registry status as operators see it (`neuron status`, `neuron registry status`,
 * `GET /v1/status`), built from the database so any process can show it: the stored registration
 * (without its token), the last status snapshot of the instance that talks to the registry, and
 * each provider's registry state. When the caller runs the registry client itself, its live
 * `status()` is used instead of the snapshot.
 *
 * Never holds the bearer token.
 */
import type { NeuronConfig } from '../../foundation/config/index.ts';
import type { Storage } from '../../foundation/storage/index.ts';
import { rosterRegistryStates } from '../../domains/providers/index.ts';
import {
  DatabaseRegistryStateStore,
  UNREGISTERED,
  remedyFor,
  type PublicRegistration,
  type RegistryState,
  type RegistryStatus,
  type RegistryStatusSnapshot,
} from '../registry/index.ts';

export interface RegistryProviderView {
  npi: string;
  /** null when the provider is no longer on the roster (its removal from the registry is pending). */
  name: string | null;
  /** The roster status (`pending`, `active`, `suspended`), or null when no longer on the roster. */
  roster_status: string | null;
  /** `unregistered`, `pending`, `registered`, `rejected`, `removing` or `removed` (docs/registry.md). */
  registry_state: string;
  registry_error: string | null;
}

export interface RegistryStatusView {
  enabled: boolean;
  /** `disabled`, `unregistered`, `registering`, `registered` or `invalid` (docs/registry.md). */
  state: RegistryState;
  /** Quote it to the registry operator; the bearer token is never shown. */
  registration_id: string | null;
  registry_url: string;
  /** The handshake URL the registry lists (as last confirmed), else the one this Neuron announces. */
  endpoint_url: string | null;
  registered_at: string | null;
  last_heartbeat_at: string | null;
  consecutive_failures: number;
  last_error: string | null;
  /** What the operator must do when `state` is `invalid`. */
  remedy: string | null;
  /** Whether a Neuron instance runs the registry client (as of `as_of`). */
  client_running: boolean;
  /** When this view's live part was taken: now for the instance running the client, else its last snapshot; null when none. */
  as_of: string | null;
  providers: RegistryProviderView[];
}

/**
 * Builds the view from the database; `live` is the caller's own RegistryService.status(), if it
 * runs one. `providers: false` leaves the provider list empty (one read fewer, for summaries).
 */
export async function readRegistryStatus(
  storage: Pick<Storage, 'db' | 'transaction'>,
  config: NeuronConfig,
  live?: RegistryStatus,
  options: { providers?: boolean } = {},
): Promise<RegistryStatusView> {
  const store = new DatabaseRegistryStateStore(storage);
  let registration: PublicRegistration | null = null;
  let unreadable: string | null = null;
  try {
    registration = await store.readRegistration();
  } catch (error) {
    unreadable = error instanceof Error ? error.message : String(error);
  }
  const snapshot: RegistryStatus | RegistryStatusSnapshot | null = live ?? (await store.loadStatus());
  const asOf = live !== undefined ? new Date().toISOString() : ((snapshot as RegistryStatusSnapshot | null)?.updatedAt ?? null);
  // A snapshot about another registration (taken before a reset) says nothing about this one.
  const current = snapshot !== null && snapshot.registrationId === (registration?.registrationId ?? null) ? snapshot : null;

  let state: RegistryState;
  let lastError: string | null = null;
  let remedy: string | null = null;
  if (!config.registry.enabled) {
    state = 'disabled';
  } else if (unreadable !== null) {
    state = 'invalid';
    lastError = `cannot read the stored registration: ${unreadable}`;
    remedy = remedyFor('state_unreadable', remedyContext(config, null, unreadable));
  } else if (current !== null) {
    state = current.state;
    lastError = current.lastError;
    remedy = current.remedy;
  } else if (registration !== null) {
    state = registration.status === 'invalid' ? 'invalid' : 'registered';
    lastError = registration.lastError;
    if (registration.status === 'invalid') remedy = remedyFor('unauthorized', remedyContext(config, registration, registration.lastError));
  } else {
    state = 'unregistered';
  }

  return {
    enabled: config.registry.enabled,
    state,
    registration_id: registration?.registrationId ?? null,
    registry_url: config.registry.url,
    endpoint_url: registration?.endpointUrl ?? current?.endpointUrl ?? null,
    registered_at: registration?.registeredAt ?? null,
    last_heartbeat_at: registration?.lastHeartbeatAt ?? null,
    consecutive_failures: registration?.consecutiveFailures ?? current?.consecutiveFailures ?? 0,
    last_error: lastError,
    remedy,
    client_running: current?.running ?? false,
    as_of: current !== null ? asOf : null,
    providers: options.providers === false ? [] : await providerViews(storage, store),
  };
}

async function providerViews(storage: Pick<Storage, 'db'>, store: DatabaseRegistryStateStore): Promise<RegistryProviderView[]> {
  const rows = await rosterRegistryStates(storage.db);
  const views: RegistryProviderView[] = rows.map((row) => ({
    npi: row.npi,
    name: row.name,
    roster_status: row.status,
    registry_state: row.registryState,
    registry_error: row.registryError,
  }));
  const onRoster = new Set(rows.map((row) => row.npi));
  for (const [npi, state] of await store.loadProviderStates()) {
    // Providers deleted from the roster still show while the registry has not confirmed their removal.
    if (onRoster.has(npi) || state.state === 'removed' || state.state === 'rejected') continue;
    views.push({ npi, name: null, roster_status: null, registry_state: state.state, registry_error: state.lastError });
  }
  return views.sort((a, b) => a.npi.localeCompare(b.npi));
}

function remedyContext(
  config: NeuronConfig,
  registration: PublicRegistration | null,
  detail: string | null,
): Parameters<typeof remedyFor>[1] {
  return {
    organizationNpi: config.organization.npi,
    registryUrl: config.registry.url,
    storedRegistryUrl: registration?.registryUrl ?? null,
    storedNpi: registration?.organizationNpi ?? null,
    detail,
  };
}

/** Counts of providers per registry state, for one-line summaries. */
export function providerStateCounts(view: RegistryStatusView): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const provider of view.providers) {
    if (provider.roster_status !== null && provider.roster_status !== 'active' && provider.registry_state === UNREGISTERED) continue;
    counts[provider.registry_state] = (counts[provider.registry_state] ?? 0) + 1;
  }
  return counts;
}
