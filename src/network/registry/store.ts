/**
 * The registry state in the Neuron's database: the production `RegistryStateStore`.
 *
 * Everything lives in the `settings` table (name, value, updated_at; read and written through
 * src/foundation/storage/settings.ts, under the `registry.` prefix), so every instance sharing
 * one PostgreSQL (or every process on one SQLite file, the CLI included) sees one registration:
 *
 * | name | value |
 * |---|---|
 * | `registry.registration` | the RegistrationRecord as JSON, bearer token included (a secret) |
 * | `registry.provider.<npi>` | one provider's ProviderRegistryState as JSON |
 * | `registry.status` | the last `status()` snapshot of the instance that talks to the registry (no secret) |
 *
 * Provider states are kept in `settings` rather than only on the roster row because a provider
 * deleted from the roster still has to be removed from the registry. Each save is mirrored into
 * `providers.registry_state` / `registry_error` when the provider is on the roster (written by the
 * providers domain: `setRegistryState`), which is what operators and the providers API read.
 *
 * The bearer token never leaves this module except to the RegistryService: `readRegistration()`
 * hands out the record without it.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Db, Storage } from '../../foundation/storage/index.ts';
import { deleteSettings, readSetting, readSettingsUnder, writeSetting } from '../../foundation/storage/settings.ts';
import { resetRegistryStates, rosterRegistryStates, setRegistryState } from '../../domains/providers/index.ts';
import type { RegistryStatusSnapshot } from './types.ts';
import {
  isRegistrationRecord,
  type ProviderRegistryState,
  type ProviderRegistryStateName,
  type RegistrationRecord,
  type RegistryStateStore,
} from './state.ts';

export const REGISTRATION_SETTING = 'registry.registration';
export const STATUS_SETTING = 'registry.status';
export const PROVIDER_SETTING_PREFIX = 'registry.provider.';
export const AGENT_CARD_SETTING = 'registry.agent_card';
/** `providers.registry_state` of a provider the registry integration has not touched (the column default). */
export const UNREGISTERED = 'unregistered';

const NPI_SHAPE = /^\d{10}$/;
const PROVIDER_STATES: readonly ProviderRegistryStateName[] = ['pending', 'registered', 'rejected', 'removing', 'removed'];

/** The stored registration without its bearer token: what status views may show. */
export type PublicRegistration = Omit<RegistrationRecord, 'bearerToken'>;

export class DatabaseRegistryStateStore implements RegistryStateStore {
  readonly #storage: Pick<Storage, 'db' | 'transaction'>;

  constructor(storage: Pick<Storage, 'db' | 'transaction'>) {
    this.#storage = storage;
  }

  async load(): Promise<RegistrationRecord | null> {
    const value = await this.#get(this.#storage.db, REGISTRATION_SETTING);
    if (value === null) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      // No cause: the parser's message quotes the text, which holds the token.
      throw new NeuronError('SERVER_ERROR', {
        message: `The stored registry registration (settings.${REGISTRATION_SETTING}) is not valid JSON`,
      });
    }
    if (!isRegistrationRecord(parsed)) {
      throw new NeuronError('SERVER_ERROR', {
        message: `The stored registry registration (settings.${REGISTRATION_SETTING}) is incomplete`,
      });
    }
    return {
      ...parsed,
      lastHeartbeatAt: parsed.lastHeartbeatAt ?? null,
      consecutiveFailures: parsed.consecutiveFailures ?? 0,
      lastError: parsed.lastError ?? null,
    };
  }

  async save(record: RegistrationRecord): Promise<void> {
    await this.#put(this.#storage.db, REGISTRATION_SETTING, JSON.stringify(record));
  }

  async loadProviderStates(): Promise<Map<string, ProviderRegistryState>> {
    const states = new Map<string, ProviderRegistryState>();
    for (const [name, value] of await readSettingsUnder(this.#storage.db, PROVIDER_SETTING_PREFIX)) {
      const npi = name.slice(PROVIDER_SETTING_PREFIX.length);
      const state = parseProviderState(npi, value);
      if (state !== null) states.set(npi, state);
    }
    return states;
  }

  async saveProviderState(npi: string, state: ProviderRegistryState): Promise<void> {
    if (!NPI_SHAPE.test(npi)) throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: 'npi', message: 'must be a ten-digit NPI' }] });
    await this.#storage.transaction(async (trx) => {
      await this.#put(trx, `${PROVIDER_SETTING_PREFIX}${npi}`, JSON.stringify(state));
      await setRegistryState(trx, npi, state.state, state.lastError);
    });
  }

  /** Forgets the registration, every provider state and the status snapshot, in one transaction. */
  async clear(): Promise<void> {
    await this.#storage.transaction(async (trx) => {
      await deleteSettings(trx, [REGISTRATION_SETTING, STATUS_SETTING], [PROVIDER_SETTING_PREFIX]);
      await resetRegistryStates(trx, UNREGISTERED);
    });
  }

  async saveStatus(status: RegistryStatusSnapshot): Promise<void> {
    await this.#put(this.#storage.db, STATUS_SETTING, JSON.stringify(status));
  }

  async loadAgentCardFingerprint(): Promise<string | null> {
    return this.#get(this.#storage.db, AGENT_CARD_SETTING);
  }

  async saveAgentCardFingerprint(fingerprint: string): Promise<void> {
    await this.#put(this.#storage.db, AGENT_CARD_SETTING, fingerprint);
  }

  async loadStatus(): Promise<RegistryStatusSnapshot | null> {
    const value = await this.#get(this.#storage.db, STATUS_SETTING);
    if (value === null) return null;
    try {
      const parsed = JSON.parse(value) as unknown;
      return parsed !== null && typeof parsed === 'object' && typeof (parsed as { state?: unknown }).state === 'string'
        ? (parsed as RegistryStatusSnapshot)
        : null;
    } catch {
      // Only a display aid; an unreadable snapshot is as good as none.
      return null;
    }
  }

  /** The stored registration without its token (for status views), or null. Throws when unreadable. */
  async readRegistration(): Promise<PublicRegistration | null> {
    const record = await this.load();
    if (record === null) return null;
    const { bearerToken: _secret, ...rest } = record;
    return rest;
  }

  /**
   * Puts `providers.registry_state` back in step with the stored provider states for the given
   * NPIs (a provider deleted and added again gets a fresh row with the column default). One read,
   * then one update per provider that differs.
   */
  async mirrorProviderStates(npis: readonly string[]): Promise<void> {
    if (npis.length === 0) return;
    const states = await this.loadProviderStates();
    const wanted = new Set(npis);
    for (const row of await rosterRegistryStates(this.#storage.db)) {
      if (!wanted.has(row.npi)) continue;
      const state = states.get(row.npi);
      const expected = state?.state ?? UNREGISTERED;
      const error = state?.lastError ?? null;
      if (row.registryState === expected && row.registryError === error) continue;
      await setRegistryState(this.#storage.db, row.npi, expected, error);
    }
  }

  #get(db: Db, name: string): Promise<string | null> {
    return readSetting(db, name);
  }

  #put(db: Db, name: string, value: string): Promise<void> {
    return writeSetting(db, name, value, new Date().toISOString());
  }
}

function parseProviderState(npi: string, value: string): ProviderRegistryState | null {
  if (!NPI_SHAPE.test(npi)) return null;
  try {
    const parsed = JSON.parse(value) as Partial<ProviderRegistryState>;
    if (!PROVIDER_STATES.includes(parsed.state as ProviderRegistryStateName)) return null;
    return {
      npi,
      state: parsed.state as ProviderRegistryStateName,
      lastError: typeof parsed.lastError === 'string' ? parsed.lastError : null,
      updatedAt: typeof parsed.updatedAt === 'string' ? parsed.updatedAt : new Date(0).toISOString(),
    };
  } catch {
    return null;
  }
}
