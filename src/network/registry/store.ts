/**
 * The registry state in the Neuron's database: the production `RegistryStateStore`.
 *
 * Everything lives in the `settings` table (name, value, updated_at), so every instance sharing
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
 * `providers.registry_state` / `registry_error` when the provider is on the roster, which is what
 * operators and the providers API read.
 *
 * The bearer token never leaves this module except to the RegistryService: `readRegistration()`
 * hands out the record without it.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Db, Storage } from '../../foundation/storage/index.ts';
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
    const rows = await this.#storage.db
      .selectFrom('settings')
      .select(['name', 'value'])
      .where('name', 'like', `${PROVIDER_SETTING_PREFIX}%`)
      .execute();
    const states = new Map<string, ProviderRegistryState>();
    for (const row of rows) {
      const npi = row.name.slice(PROVIDER_SETTING_PREFIX.length);
      const state = parseProviderState(npi, row.value);
      if (state !== null) states.set(npi, state);
    }
    return states;
  }

  async saveProviderState(npi: string, state: ProviderRegistryState): Promise<void> {
    if (!NPI_SHAPE.test(npi)) throw new NeuronError('VALIDATION_FAILED', { errors: [{ path: 'npi', message: 'must be a ten-digit NPI' }] });
    await this.#storage.transaction(async (trx) => {
      await this.#put(trx, `${PROVIDER_SETTING_PREFIX}${npi}`, JSON.stringify(state));
      await trx
        .updateTable('providers')
        .set({ registry_state: state.state, registry_error: state.lastError })
        .where('npi', '=', npi)
        .execute();
    });
  }

  /** Forgets the registration, every provider state and the status snapshot, in one transaction. */
  async clear(): Promise<void> {
    await this.#storage.transaction(async (trx) => {
      await trx
        .deleteFrom('settings')
        .where((eb) =>
          eb.or([
            eb('name', '=', REGISTRATION_SETTING),
            eb('name', '=', STATUS_SETTING),
            eb('name', 'like', `${PROVIDER_SETTING_PREFIX}%`),
          ]),
        )
        .execute();
      await trx.updateTable('providers').set({ registry_state: UNREGISTERED, registry_error: null }).execute();
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
    const rows = await this.#storage.db.selectFrom('providers').select(['npi', 'registry_state', 'registry_error']).execute();
    const wanted = new Set(npis);
    for (const row of rows) {
      if (!wanted.has(row.npi)) continue;
      const state = states.get(row.npi);
      const expected = state?.state ?? UNREGISTERED;
      const error = state?.lastError ?? null;
      if (row.registry_state === expected && row.registry_error === error) continue;
      await this.#storage.db
        .updateTable('providers')
        .set({ registry_state: expected, registry_error: error })
        .where('npi', '=', row.npi)
        .execute();
    }
  }

  async #get(db: Db, name: string): Promise<string | null> {
    const row = await db.selectFrom('settings').select('value').where('name', '=', name).executeTakeFirst();
    return row?.value ?? null;
  }

  async #put(db: Db, name: string, value: string): Promise<void> {
    const updatedAt = new Date().toISOString();
    await db
      .insertInto('settings')
      .values({ name, value, updated_at: updatedAt })
      .onConflict((conflict) =>
        conflict.column('name').doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), updated_at: eb.ref('excluded.updated_at') })),
      )
      .execute();
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
