/**
 * The provider roster: operators add, change, approve, suspend and remove providers (REST API and
 * CLI alike); provider CareAgents register themselves (always as pending), prove themselves with
 * the credential issued at approval, and send heartbeats. Every change is one transaction with
 * its audit entry, so the audit log shows exactly the changes that happened.
 */
import type { AuditLog } from '../audit/index.ts';
import type { Principal } from '../../foundation/rest/principal.ts';
import { ConfigError, type ProviderSeed } from '../../foundation/config/index.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { OutboxRow, OutboxService } from '../outbox/index.ts';
import { decodeCursor, encodeCursor } from '../../foundation/storage/cursor.ts';
import { isoNow, type Db, type Storage } from '../../foundation/storage/index.ts';
import { insertSetting, readSetting } from '../../foundation/storage/settings.ts';
import { credentialIdOf, credentialMatches, issueProviderCredential } from './credentials.ts';
import {
  deleteProvider,
  getCredentialHolder,
  getProvider,
  getProviderByRegistrationDigest,
  insertProvider,
  listProviders,
  setAgentStatus,
  setCredential,
  setRegistration,
  updateProvider,
  type Provider,
  type ProviderPatch,
} from './store.ts';
import { issueRegistrationCapability, registrationDigest } from './registration.ts';
import type { OutboundPolicy } from '../../foundation/outbound/index.ts';
import { notificationUrlRefusals, providerFieldProblems, type ProviderStatus } from './validation.ts';
import {
  byWhom,
  ENDPOINT_NEEDED,
  invalid,
  notFound,
  refused,
  type AgentLiveness,
  type Approval,
  type CreateProviderInput,
  type RegistrationInput,
  type RosterActor,
  type RosterChangeType,
  type UpdateProviderInput,
} from './roster-inputs.ts';

export interface ProviderServiceOptions {
  storage: Storage;
  audit: AuditLog;
  /** The policy notification URLs must meet (they are checked again at every delivery). */
  outbound: OutboundPolicy;
  /** Held provider notices are made due through it (a notification URL set, an approval). */
  outbox: OutboxService;
  /** Called after a commit that made held provider notices due (the outbox worker's nudge). */
  onOutboxWake?: () => void;
  /** Called after every committed roster change (for example to update the registry). */
  onChange?: (change: { type: RosterChangeType; npi: string }) => void;
}

export class ProviderService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;
  readonly #outbound: OutboundPolicy;
  readonly #outbox: OutboxService;
  readonly #onOutboxWake: () => void;
  readonly #onChange: (change: { type: RosterChangeType; npi: string }) => void;

  constructor(options: ProviderServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
    this.#outbound = options.outbound;
    this.#outbox = options.outbox;
    this.#onOutboxWake = options.onOutboxWake ?? (() => undefined);
    this.#onChange = options.onChange ?? (() => undefined);
  }

  /**
   * One change: a transaction that first takes the audit chain lock, so concurrent changes to the
   * same provider through any instance are serialised and each read-check-write is race free on
   * SQLite and PostgreSQL alike (the audit append needs the lock anyway).
   */
  async #change<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    return this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      return work(trx);
    });
  }

  /**
   * A provider's relationship notices after the cursor `after` (the pull feed). When the provider
   * itself asks (`byTheProvider`: its credential named this NPI), every notice up to the cursor
   * first counts as delivered; anyone else gets NOT_FOUND for an NPI not on the roster. Throws
   * INVALID_CURSOR.
   */
  async relationshipFeed(npi: string, page: { after: string | undefined; limit: number; byTheProvider: boolean }): Promise<OutboxRow[]> {
    if (!page.byTheProvider && (await getProvider(this.#storage.db, npi)) === null)
      throw new NeuronError('NOT_FOUND', { message: 'no such provider' });
    const afterSeq = page.after === undefined ? 0 : Number(decodeCursor(page.after, ['number'])[0]);
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new NeuronError('INVALID_CURSOR');
    return this.#outbox.providerFeed(npi, afterSeq, page.limit, page.byTheProvider);
  }

  /** The provider's registered Ed25519 key; null when it has none or is not on the roster. */
  async registeredPublicKey(npi: string): Promise<string | null> {
    return (await getProvider(this.#storage.db, npi))?.providerPublicKey ?? null;
  }

  async get(npi: string): Promise<Provider> {
    const provider = await getProvider(this.#storage.db, npi);
    if (!provider) throw notFound(npi);
    return provider;
  }

  /** A page in NPI order with an opaque cursor for the next page (null at the end). */
  async list(options: { after?: string; limit: number; status?: ProviderStatus }): Promise<{ items: Provider[]; next: string | null }> {
    const afterNpi = options.after === undefined ? undefined : String(decodeCursor(options.after, ['string'])[0]);
    const page = await listProviders(this.#storage.db, { afterNpi, limit: options.limit, status: options.status });
    const last = page.items[page.items.length - 1];
    return { items: page.items, next: page.more && last ? encodeCursor([last.npi]) : null };
  }

  async create(input: CreateProviderInput, by: RosterActor): Promise<Provider> {
    const status = input.status ?? 'pending';
    const problems = providerFieldProblems(input, ['npi', 'name']);
    if (input.status !== undefined && input.status !== 'pending' && input.status !== 'active')
      problems.push({ path: 'status', message: 'must be pending or active' });
    if (status === 'active' && (input.provider_endpoint ?? null) === null && problems.length === 0)
      problems.push({ path: 'provider_endpoint', message: ENDPOINT_NEEDED });
    if (problems.length > 0) throw invalid(problems);
    const refusals = notificationUrlRefusals(input, this.#outbound);
    if (refusals.length > 0) throw refused(refusals);
    const at = isoNow();
    await this.#change(async (trx) => {
      const inserted = await insertProvider(
        trx,
        {
          npi: input.npi,
          name: input.name.trim(),
          providerTypes: input.provider_types ?? ['physician'],
          specialty: input.specialty ?? null,
          credentials: input.credentials ?? [],
          status,
          providerEndpoint: input.provider_endpoint ?? null,
          providerPublicKey: input.provider_public_key ?? null,
          notificationUrl: input.notification_url ?? null,
          // An operator-added provider gets its registration capability at approval.
          registration: null,
        },
        at,
      );
      if (!inserted) throw new NeuronError('CONFLICT', { message: `a provider with NPI ${input.npi} is already on the roster` });
      await this.#audit.append(trx, { type: 'provider.created', actor: by.actor, details: { npi: input.npi, status, ...byWhom(by) } });
    });
    this.#onChange({ type: 'created', npi: input.npi });
    return this.get(input.npi);
  }

  async update(npi: string, input: UpdateProviderInput, by: RosterActor): Promise<Provider> {
    const problems = providerFieldProblems(input, []);
    if (input.name === null) problems.push({ path: 'name', message: 'cannot be cleared' });
    if (input.provider_types === null) problems.push({ path: 'provider_types', message: 'cannot be cleared' });
    if (problems.length > 0) throw invalid(problems);
    const refusals = notificationUrlRefusals(input, this.#outbound);
    if (refusals.length > 0) throw refused(refusals);
    const patch: ProviderPatch = {
      name: input.name?.trim(),
      providerTypes: input.provider_types,
      specialty: input.specialty,
      credentials: input.credentials,
      providerEndpoint: input.provider_endpoint,
      providerPublicKey: input.provider_public_key,
      notificationUrl: input.notification_url,
    };
    const changed = Object.entries(patch)
      .filter(([, value]) => value !== undefined)
      .map(([key]) => key);
    let woke = false;
    await this.#change(async (trx) => {
      const current = await getProvider(trx, npi);
      if (!current) throw notFound(npi);
      if (current.status === 'active' && input.provider_endpoint === null)
        throw invalid([{ path: 'provider_endpoint', message: ENDPOINT_NEEDED }]);
      if (changed.length === 0) return;
      const at = isoNow();
      await updateProvider(trx, npi, patch, at);
      if (typeof input.notification_url === 'string' && input.notification_url !== current.notificationUrl) {
        woke = (await this.#outbox.wakeProviderNotices(trx, npi, at)) > 0;
      }
      await this.#audit.append(trx, {
        type: 'provider.updated',
        actor: by.actor,
        details: { npi, fields: changed.map(snakeCase), ...byWhom(by) },
      });
    });
    if (woke) this.#onOutboxWake();
    if (changed.length > 0) this.#onChange({ type: 'updated', npi });
    return this.get(npi);
  }

  /**
   * Makes the provider active and issues its CareAgent credential (shown once). A provider that is
   * already active with a credential is left alone unless `rotate` asks for a new credential,
   * which replaces the old one at once.
   */
  async approve(npi: string, by: RosterActor, options: { rotate?: boolean } = {}): Promise<Approval> {
    const issued = issueProviderCredential();
    const registration = issueRegistrationCapability();
    let rotated = false;
    let registrationIssued = false;
    await this.#change(async (trx) => {
      const current = await getProvider(trx, npi);
      if (!current) throw notFound(npi);
      if (current.providerEndpoint === null) {
        throw new NeuronError('CONFLICT', {
          message: `set a provider_endpoint for ${npi} before approving it: it is the address patients receive`,
        });
      }
      if (current.status === 'active' && current.credentialId !== null && options.rotate !== true) {
        throw new NeuronError('CONFLICT', {
          message: `provider ${npi} is already active with a credential; ask for rotation to issue a new one`,
        });
      }
      rotated = current.credentialId !== null;
      const at = isoNow();
      if (current.status !== 'active') await updateProvider(trx, npi, { status: 'active' }, at);
      await setCredential(trx, npi, issued.credentialId, issued.digest, at);
      if (current.registrationPrefix === null) {
        await setRegistration(trx, npi, registration);
        registrationIssued = true;
      }
      await this.#outbox.wakeProviderNotices(trx, npi, at);
      await this.#audit.append(trx, {
        type: 'provider.approved',
        actor: by.actor,
        details: { npi, previous_status: current.status, credential_id: issued.credentialId, rotated, ...byWhom(by) },
      });
    });
    this.#onOutboxWake();
    this.#onChange({ type: 'approved', npi });
    return {
      provider: await this.get(npi),
      credential: issued.credential,
      credentialId: issued.credentialId,
      rotated,
      registrationId: registrationIssued ? registration.id : null,
    };
  }

  /**
   * Suspends a provider: new handshakes to it are refused at once and its credential is revoked
   * (approval issues a new one). Suspending a suspended provider changes nothing.
   */
  async suspend(npi: string, by: RosterActor, reason?: string): Promise<Provider> {
    let changed = false;
    await this.#change(async (trx) => {
      const current = await getProvider(trx, npi);
      if (!current) throw notFound(npi);
      if (current.status === 'suspended') return;
      const at = isoNow();
      await updateProvider(trx, npi, { status: 'suspended' }, at);
      await setCredential(trx, npi, null, null, at);
      await this.#audit.append(trx, {
        type: 'provider.suspended',
        actor: by.actor,
        details: { npi, previous_status: current.status, reason, ...byWhom(by) },
      });
      changed = true;
    });
    if (changed) this.#onChange({ type: 'suspended', npi });
    return this.get(npi);
  }

  /**
   * Removes a provider from the roster. Its relationships stay (they are history); notices not
   * yet delivered to it become dead letters when the worker next looks at them.
   */
  async remove(npi: string, by: RosterActor): Promise<void> {
    await this.#change(async (trx) => {
      const current = await getProvider(trx, npi);
      if (!current) throw notFound(npi);
      await deleteProvider(trx, npi);
      await this.#audit.append(trx, {
        type: 'provider.removed',
        actor: by.actor,
        details: { npi, previous_status: current.status, ...byWhom(by) },
      });
    });
    this.#onChange({ type: 'removed', npi });
  }

  /** Self-registration by a provider CareAgent: always pending, whatever it sends. */
  async register(input: RegistrationInput): Promise<{ registrationId: string; providerId: string; status: 'pending' }> {
    const fields = {
      npi: input.provider_npi,
      name: input.provider_name,
      provider_types: input.provider_types,
      specialty: input.specialty,
      credentials: input.credentials,
      provider_endpoint: input.provider_endpoint,
      provider_public_key: input.provider_public_key,
      notification_url: input.notification_url,
    };
    const problems = providerFieldProblems(fields, ['npi', 'name', 'provider_types']).map((p) => ({
      path: p.path.replace(/^npi/, 'provider_npi').replace(/^name$/, 'provider_name'),
      message: p.message,
    }));
    if (problems.length > 0) throw invalid(problems);
    const refusals = notificationUrlRefusals(fields, this.#outbound);
    if (refusals.length > 0) throw refused(refusals);
    const registration = issueRegistrationCapability();
    await this.#change(async (trx) => {
      const inserted = await insertProvider(
        trx,
        {
          npi: fields.npi,
          name: fields.name.trim(),
          providerTypes: fields.provider_types,
          specialty: fields.specialty ?? null,
          credentials: fields.credentials ?? [],
          status: 'pending',
          providerEndpoint: fields.provider_endpoint ?? null,
          providerPublicKey: fields.provider_public_key ?? null,
          notificationUrl: fields.notification_url ?? null,
          registration: { digest: registration.digest, prefix: registration.prefix },
        },
        isoNow(),
      );
      if (!inserted) throw new NeuronError('CONFLICT', { message: 'this NPI is already registered' });
      // The prefix only: the whole id is a capability, and the audit log is readable by admins.
      await this.#audit.append(trx, {
        type: 'provider.registered',
        actor: 'anonymous',
        details: { npi: fields.npi, registration_id_prefix: registration.prefix },
      });
    });
    this.#onChange({ type: 'registered', npi: fields.npi });
    return { registrationId: registration.id, providerId: fields.npi, status: 'pending' };
  }

  /**
   * The provider principal for a presented credential, or null. Only active providers hold a
   * credential (suspension revokes it), and the status is checked again here.
   */
  async authenticate(credential: string): Promise<Extract<Principal, { kind: 'provider' }> | null> {
    const credentialId = credentialIdOf(credential);
    if (credentialId === null) return null;
    const holder = await getCredentialHolder(this.#storage.db, credentialId);
    if (!holder || !credentialMatches(credential, holder.digest) || holder.status !== 'active') return null;
    return { kind: 'provider', npi: holder.npi, registrationId: null };
  }

  /**
   * The provider holding a registration capability; NOT_FOUND otherwise. Presenting the id is
   * enough (the network's provider client sends no header on these calls); a provider credential,
   * when the caller sends one anyway, must be this provider's (the route checks it), so it looks
   * exactly like an unknown id.
   */
  async #registered(registrationId: string, principal: Principal | null): Promise<Provider> {
    const provider = await getProviderByRegistrationDigest(this.#storage.db, registrationDigest(registrationId));
    if (!provider || (principal !== null && (principal.kind !== 'provider' || provider.npi !== principal.npi))) {
      throw new NeuronError('NOT_FOUND', { message: 'no such registration' });
    }
    return provider;
  }

  /** The CareAgent is alive: it counts as connected from now, whatever its roster status. */
  async heartbeat(registrationId: string, principal: Principal | null): Promise<AgentLiveness> {
    const provider = await this.#registered(registrationId, principal);
    const at = isoNow();
    await setAgentStatus(this.#storage.db, provider.npi, 'connected', at);
    return { status: 'connected', lastSeen: at, rosterStatus: provider.status };
  }

  /** The CareAgent goes offline: kept on the roster, shown offline until its next heartbeat. */
  async disconnect(registrationId: string, principal: Principal | null): Promise<AgentLiveness> {
    const provider = await this.#registered(registrationId, principal);
    const at = isoNow();
    await this.#change(async (trx) => {
      await setAgentStatus(trx, provider.npi, 'disconnected', at);
      await this.#audit.append(trx, {
        type: 'provider.disconnected',
        actor: `provider:${provider.npi}`,
        details: { npi: provider.npi, registration_id_prefix: provider.registrationPrefix },
      });
    });
    return { status: 'disconnected', lastSeen: at, rosterStatus: provider.status };
  }

  /**
   * Adds config seeds that were never added before. A seed is applied once (remembered in the
   * settings table, `providers.seeded.<npi>`, src/foundation/storage/settings.ts), so later operator changes, including removing the provider, are never
   * overwritten by a restart. Returns the NPIs added.
   */
  async seed(seeds: readonly ProviderSeed[]): Promise<string[]> {
    const problems: Array<{ path: string; message: string }> = [];
    seeds.forEach((seed, index) => {
      const shape = providerFieldProblems(seed, ['npi', 'name', 'provider_types', 'provider_endpoint']);
      for (const problem of shape.length > 0 ? shape : notificationUrlRefusals(seed, this.#outbound)) {
        problems.push({ path: `providers.${index}.${problem.path}`, message: problem.message });
      }
    });
    if (problems.length > 0) throw new ConfigError(problems, 'providers');
    const added: string[] = [];
    for (const seed of seeds) {
      const marker = `providers.seeded.${seed.npi}`;
      const inserted = await this.#change(async (trx) => {
        if ((await readSetting(trx, marker)) !== null) return false;
        const at = isoNow();
        await insertSetting(trx, marker, at, at);
        const fresh = await insertProvider(
          trx,
          {
            npi: seed.npi,
            name: seed.name,
            providerTypes: seed.provider_types,
            specialty: seed.specialty ?? null,
            credentials: [],
            status: seed.status,
            providerEndpoint: seed.provider_endpoint,
            providerPublicKey: seed.provider_public_key ?? null,
            notificationUrl: seed.notification_url ?? null,
            registration: null,
          },
          at,
        );
        if (fresh)
          await this.#audit.append(trx, { type: 'provider.seeded', actor: 'system', details: { npi: seed.npi, status: seed.status } });
        return fresh;
      });
      if (inserted) {
        added.push(seed.npi);
        this.#onChange({ type: 'seeded', npi: seed.npi });
      }
    }
    return added;
  }
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}
