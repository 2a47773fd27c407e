/**
 * The provider roster in the database. Every read goes to the database (a primary-key or unique
 * index read), so a change made by the CLI or another instance takes effect at once everywhere;
 * there is no cache to invalidate.
 */
import type { Db } from '../../foundation/storage/index.ts';
import { Statement } from '../../foundation/storage/statements.ts';
import type { ProvidersTable } from '../../foundation/storage/tables.ts';
import type { ProviderCredential, ProviderStatus } from './validation.ts';

export interface Provider {
  npi: string;
  name: string;
  providerTypes: string[];
  specialty: string | null;
  credentials: ProviderCredential[];
  status: ProviderStatus;
  providerEndpoint: string | null;
  providerPublicKey: string | null;
  notificationUrl: string | null;
  /** The first characters of the registration capability (the id itself is never stored). */
  registrationPrefix: string | null;
  /** What the provider CareAgent last said: connected (heartbeat) or disconnected; null before either. */
  agentStatus: 'connected' | 'disconnected' | null;
  /** Non-secret id of the provider CareAgent's current credential, or null when none is issued. */
  credentialId: string | null;
  lastSeenAt: string | null;
  registryState: string;
  registryError: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toProvider(row: ProvidersTable): Provider {
  return {
    npi: row.npi,
    name: row.name,
    providerTypes: JSON.parse(row.provider_types) as string[],
    specialty: row.specialty,
    credentials: JSON.parse(row.credentials) as ProviderCredential[],
    status: row.status,
    providerEndpoint: row.provider_endpoint,
    providerPublicKey: row.provider_public_key,
    notificationUrl: row.notification_url,
    registrationPrefix: row.registration_prefix,
    agentStatus: row.agent_status,
    credentialId: row.credential_id,
    lastSeenAt: row.last_seen_at,
    registryState: row.registry_state,
    registryError: row.registry_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** What the handshake needs to answer a patient: the provider CareAgent's address and key. */
export interface ActiveProvider {
  npi: string;
  /** The provider CareAgent's direct address, handed to the patient in handshake.complete. */
  endpoint: string;
  /** 43-char base64url Ed25519 key, or null when the provider registered none. */
  publicKey: string | null;
}

/**
 * The active providers in NPI order, as the registry lists them (src/network/presence/). The
 * JSON columns come as stored: presence reads them leniently and skips a row it cannot read.
 */
export async function activeRosterForRegistry(
  db: Db,
): Promise<
  Array<{ npi: string; name: string; providerTypesJson: string; specialty: string | null; credentialsJson: string; registryState: string }>
> {
  const rows = await db
    .selectFrom('providers')
    .select(['npi', 'name', 'provider_types', 'specialty', 'credentials', 'registry_state'])
    .where('status', '=', 'active')
    .orderBy('npi')
    .execute();
  return rows.map((row) => ({
    npi: row.npi,
    name: row.name,
    providerTypesJson: row.provider_types,
    specialty: row.specialty,
    credentialsJson: row.credentials,
    registryState: row.registry_state,
  }));
}

/** Every provider in NPI order with its roster status and registry state (`neuron registry status`). */
export async function rosterRegistryStates(
  db: Db,
): Promise<Array<{ npi: string; name: string; status: ProviderStatus; registryState: string; registryError: string | null }>> {
  const rows = await db
    .selectFrom('providers')
    .select(['npi', 'name', 'status', 'registry_state', 'registry_error'])
    .orderBy('npi')
    .execute();
  return rows.map((row) => ({
    npi: row.npi,
    name: row.name,
    status: row.status,
    registryState: row.registry_state,
    registryError: row.registry_error,
  }));
}

/**
 * Sets the registry integration's view of one provider (`registry_state`, `registry_error`), the
 * column operators and the providers API read; nothing when the NPI is not on the roster. Written
 * by src/network/registry/ through this domain, in the caller's transaction.
 */
export async function setRegistryState(db: Db, npi: string, state: string, error: string | null): Promise<void> {
  await db.updateTable('providers').set({ registry_state: state, registry_error: error }).where('npi', '=', npi).execute();
}

/** Puts every provider's registry state back to `state` with no error (the registration was forgotten). */
export async function resetRegistryStates(db: Db, state: string): Promise<void> {
  await db.updateTable('providers').set({ registry_state: state, registry_error: null }).execute();
}

/**
 * What the outbox needs to deliver a relationship notice to this provider: its roster status and
 * notification URL; null when it is not on the roster (given to the outbox's notice resolver by
 * the composition root, so the outbox reads no table of this domain).
 */
export async function providerNoticeTarget(
  db: Db,
  npi: string,
): Promise<{ status: ProviderStatus; notificationUrl: string | null } | null> {
  const row = await db.selectFrom('providers').select(['status', 'notification_url']).where('npi', '=', npi).executeTakeFirst();
  return row === undefined ? null : { status: row.status, notificationUrl: row.notification_url };
}

/**
 * The provider with this NPI when it is active and has an endpoint; null otherwise (unknown,
 * pending, suspended, or no endpoint a patient could reach). One primary-key read and no cache:
 * an approval or suspension by the CLI, the API or another instance counts from the very next
 * handshake.
 */
export async function getActiveProvider(db: Db, npi: string): Promise<ActiveProvider | null> {
  const row = await db
    .selectFrom('providers')
    .select(['npi', 'status', 'provider_endpoint', 'provider_public_key'])
    .where('npi', '=', npi)
    .executeTakeFirst();
  if (!row) return null;
  return activeProviderOf({ npi: row.npi, status: row.status, endpoint: row.provider_endpoint, publicKey: row.provider_public_key });
}

/**
 * The one "active provider" rule, for every reader of a provider row (this store and its
 * handshake read): `active` in the roster and a CareAgent endpoint to hand the patient
 * (a provider without one could not be reached, so it cannot take patients). Null otherwise.
 */
export function activeProviderOf(row: {
  npi: string;
  status: string | null;
  endpoint: string | null;
  publicKey: string | null;
}): ActiveProvider | null {
  if (row.status !== 'active' || row.endpoint === null || row.endpoint === '') return null;
  return { npi: row.npi, endpoint: row.endpoint, publicKey: row.publicKey };
}

/**
 * What a handshake must know of the provider it names, read fresh each time (never cached): the
 * provider when it is active by `activeProviderOf`, and whether its notices are pushed (it has a
 * notification_url; only an active provider's notices are pushed or pulled at all). Plain SQL
 * written once (storage/statements.ts): a handshake runs it twice, before the challenge and in
 * its transaction, and the query builder would cost more than the primary-key probe itself.
 */
const HANDSHAKE_PROVIDER = new Statement(
  'SELECT status, provider_endpoint AS endpoint, provider_public_key AS public_key, notification_url IS NOT NULL AS pushes FROM providers WHERE npi = ?',
);

export async function readHandshakeProvider(db: Db, npi: string): Promise<{ provider: ActiveProvider | null; pushes: boolean }> {
  const { rows } = await HANDSHAKE_PROVIDER.execute<{
    status: string;
    endpoint: string | null;
    public_key: string | null;
    pushes: number | boolean;
  }>(db, [npi]);
  const row = rows[0];
  if (row === undefined) return { provider: null, pushes: false };
  const provider = activeProviderOf({ npi, status: row.status, endpoint: row.endpoint, publicKey: row.public_key });
  return { provider, pushes: provider !== null && Boolean(row.pushes) };
}

export async function getProvider(db: Db, npi: string): Promise<Provider | null> {
  const row = await db.selectFrom('providers').selectAll().where('npi', '=', npi).executeTakeFirst();
  return row ? toProvider(row) : null;
}

/** The provider holding a registration capability, found by the capability's digest (unique index). */
export async function getProviderByRegistrationDigest(db: Db, digest: string): Promise<Provider | null> {
  const row = await db.selectFrom('providers').selectAll().where('registration_digest', '=', digest).executeTakeFirst();
  return row ? toProvider(row) : null;
}

/** The provider holding a credential id, with the stored digest to compare against. */
export async function getCredentialHolder(
  db: Db,
  credentialId: string,
): Promise<{ npi: string; status: ProviderStatus; digest: string } | null> {
  const row = await db
    .selectFrom('providers')
    .select(['npi', 'status', 'credential_digest'])
    .where('credential_id', '=', credentialId)
    .executeTakeFirst();
  if (!row || row.credential_digest === null) return null;
  return { npi: row.npi, status: row.status, digest: row.credential_digest };
}

/** A page in NPI order; `next` is the cursor key (the last NPI) when more rows follow. */
export async function listProviders(
  db: Db,
  options: { afterNpi?: string; limit: number; status?: ProviderStatus },
): Promise<{ items: Provider[]; more: boolean }> {
  let query = db.selectFrom('providers').selectAll();
  if (options.afterNpi !== undefined) query = query.where('npi', '>', options.afterNpi);
  if (options.status !== undefined) query = query.where('status', '=', options.status);
  const rows = await query
    .orderBy('npi', 'asc')
    .limit(options.limit + 1)
    .execute();
  return { items: rows.slice(0, options.limit).map(toProvider), more: rows.length > options.limit };
}

export interface NewProviderRow {
  npi: string;
  name: string;
  providerTypes: string[];
  specialty: string | null;
  credentials: ProviderCredential[];
  status: ProviderStatus;
  providerEndpoint: string | null;
  providerPublicKey: string | null;
  notificationUrl: string | null;
  /** The registration capability's digest and prefix; null for a provider no CareAgent registered. */
  registration: { digest: string; prefix: string } | null;
}

/** Inserts a provider; false, writing nothing, when the NPI is already on the roster. */
export async function insertProvider(db: Db, provider: NewProviderRow, at: string): Promise<boolean> {
  const result = await db
    .insertInto('providers')
    .values({
      npi: provider.npi,
      name: provider.name,
      provider_types: JSON.stringify(provider.providerTypes),
      specialty: provider.specialty,
      credentials: JSON.stringify(provider.credentials),
      status: provider.status,
      provider_endpoint: provider.providerEndpoint,
      provider_public_key: provider.providerPublicKey,
      notification_url: provider.notificationUrl,
      registration_id: null,
      registration_digest: provider.registration?.digest ?? null,
      registration_prefix: provider.registration?.prefix ?? null,
      agent_status: null,
      credential_id: null,
      credential_digest: null,
      last_seen_at: null,
      registry_state: 'unregistered',
      registry_error: null,
      created_at: at,
      updated_at: at,
    })
    .onConflict((conflict) => conflict.column('npi').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export interface ProviderPatch {
  name?: string;
  providerTypes?: string[];
  specialty?: string | null;
  credentials?: ProviderCredential[];
  status?: ProviderStatus;
  providerEndpoint?: string | null;
  providerPublicKey?: string | null;
  notificationUrl?: string | null;
}

export async function updateProvider(db: Db, npi: string, patch: ProviderPatch, at: string): Promise<boolean> {
  const set: Partial<ProvidersTable> = { updated_at: at };
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.providerTypes !== undefined) set.provider_types = JSON.stringify(patch.providerTypes);
  if (patch.specialty !== undefined) set.specialty = patch.specialty;
  if (patch.credentials !== undefined) set.credentials = JSON.stringify(patch.credentials);
  if (patch.status !== undefined) set.status = patch.status;
  if (patch.providerEndpoint !== undefined) set.provider_endpoint = patch.providerEndpoint;
  if (patch.providerPublicKey !== undefined) set.provider_public_key = patch.providerPublicKey;
  if (patch.notificationUrl !== undefined) set.notification_url = patch.notificationUrl;
  const result = await db.updateTable('providers').set(set).where('npi', '=', npi).executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Stores a new credential digest (replacing any previous one), or clears it with nulls. */
export async function setCredential(db: Db, npi: string, credentialId: string | null, digest: string | null, at: string): Promise<void> {
  await db
    .updateTable('providers')
    .set({ credential_id: credentialId, credential_digest: digest, updated_at: at })
    .where('npi', '=', npi)
    .execute();
}

/** Records what the provider CareAgent said (heartbeat: connected; disconnect) and when. */
export async function setAgentStatus(db: Db, npi: string, status: 'connected' | 'disconnected', at: string): Promise<void> {
  await db.updateTable('providers').set({ last_seen_at: at, agent_status: status }).where('npi', '=', npi).execute();
}

/** Gives a provider that has none a registration capability (an operator-added one, at approval). */
export async function setRegistration(db: Db, npi: string, registration: { digest: string; prefix: string }): Promise<void> {
  await db
    .updateTable('providers')
    .set({ registration_digest: registration.digest, registration_prefix: registration.prefix })
    .where('npi', '=', npi)
    .execute();
}

export async function deleteProvider(db: Db, npi: string): Promise<boolean> {
  const result = await db.deleteFrom('providers').where('npi', '=', npi).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}
