/**
 * API keys: create (shown once), list, revoke, and the per-request check.
 *
 * Revocation and expiry take effect on the very next request, in every instance and whichever
 * process made the change (the CLI writes the same table): `authenticate` reads the key's row by
 * primary key on every request, with no cache.
 *
 * `last_used_at` is kept without a write per request: uses are noted in memory and written in one
 * batch every `api.key_last_used_flush_ms` and when the Neuron stops. A crash loses at most one
 * interval of last-use times, never a key or a revocation.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import type { Scope } from '../../foundation/rest/principal.ts';
import { generateApiKey, newKeyId, parseApiKey, secretMatches } from './format.ts';
import { getKey, insertKey, listKeys, recordLastUsed, revokeKey, type ApiKeyRecord } from './store.ts';

export type ApiKeyStatus = 'active' | 'revoked' | 'expired';

export interface ApiKeyView {
  id: string;
  label: string;
  scopes: Scope[];
  status: ApiKeyStatus;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export type AuthenticationResult =
  | { ok: true; key: ApiKeyRecord }
  /** `keyId` is set when the presented text named a key id (non-secret), for the audit of brute force. */
  | { ok: false; reason: 'malformed' | 'unknown' | 'mismatch' | 'revoked' | 'expired'; keyId: string | null };

export interface CreateKeyInput {
  label: string;
  scopes: Scope[];
  expiresAt: string | null;
  /** Audit actor: `cli`, or `api-key:<label>` of the admin key. */
  actor: string;
  /** Id of the admin key that made the change, when made through the API. */
  actorKeyId?: string;
}

export interface ApiKeyServiceOptions {
  storage: Storage;
  audit: AuditLog;
  logger?: Logger;
  now?: () => number;
}

/** Order scopes the same way everywhere and drop duplicates. */
function normaliseScopes(scopes: readonly Scope[]): Scope[] {
  const order: Scope[] = ['read', 'write', 'admin'];
  return order.filter((scope) => scopes.includes(scope));
}

export function keyStatus(key: Pick<ApiKeyRecord, 'revokedAt' | 'expiresAt'>, now: number): ApiKeyStatus {
  if (key.revokedAt !== null) return 'revoked';
  if (key.expiresAt !== null && Date.parse(key.expiresAt) <= now) return 'expired';
  return 'active';
}

export class ApiKeyService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  /** Key id -> latest use not yet written. */
  #pendingUses = new Map<string, string>();
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(options: ApiKeyServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  async create(input: CreateKeyInput): Promise<{ key: string; view: ApiKeyView }> {
    const now = this.#now();
    if (input.expiresAt !== null && Date.parse(input.expiresAt) <= now) {
      throw new NeuronError('VALIDATION_FAILED', {
        message: 'invalid request: body.expires_at must be in the future',
        errors: [{ path: 'body.expires_at', message: 'must be in the future' }],
      });
    }
    const scopes = normaliseScopes(input.scopes);
    if (scopes.length === 0) {
      throw new NeuronError('VALIDATION_FAILED', {
        message: 'invalid request: body.scopes must name at least one scope',
        errors: [{ path: 'body.scopes', message: 'must name at least one of read, write, admin' }],
      });
    }
    const id = newKeyId();
    const { key, digest } = generateApiKey(id);
    const record: ApiKeyRecord = {
      id,
      label: input.label,
      scopes,
      digest,
      createdAt: isoNow(now),
      expiresAt: input.expiresAt === null ? null : new Date(input.expiresAt).toISOString(),
      revokedAt: null,
      lastUsedAt: null,
    };
    await this.#storage.transaction(async (trx) => {
      await insertKey(trx, record);
      await this.#audit.append(
        trx,
        {
          type: 'api_key.created',
          actor: input.actor,
          details: { key_id: id, label: record.label, scopes, expires_at: record.expiresAt, by_key_id: input.actorKeyId },
        },
        now,
      );
    });
    return { key, view: this.#view(record) };
  }

  async get(id: string): Promise<ApiKeyView | null> {
    const record = await getKey(this.#storage.db, id);
    return record ? this.#view(record) : null;
  }

  async list(options: { after?: string; limit: number }): Promise<{ items: ApiKeyView[]; next: string | null }> {
    const page = await listKeys(this.#storage.db, options);
    return { items: page.items.map((record) => this.#view(record)), next: page.next };
  }

  /** Throws NOT_FOUND, or CONFLICT when already revoked. Effective on the next request everywhere. */
  async revoke(id: string, actor: string, actorKeyId?: string): Promise<ApiKeyView> {
    const now = this.#now();
    const at = isoNow(now);
    const record = await this.#storage.transaction(async (trx) => {
      const existing = await getKey(trx, id);
      if (existing === null) throw new NeuronError('NOT_FOUND', { message: 'no API key with this id' });
      if (!(await revokeKey(trx, id, at))) throw new NeuronError('CONFLICT', { message: 'the API key is already revoked' });
      await this.#audit.append(
        trx,
        { type: 'api_key.revoked', actor, details: { key_id: id, label: existing.label, by_key_id: actorKeyId } },
        now,
      );
      return { ...existing, revokedAt: at };
    });
    return this.#view(record);
  }

  /**
   * Checks a presented key: shape and checksum first (no database), then the row by id, the
   * secret's digest in constant time, revocation and expiry. Revoked and expired are only told
   * apart from "not valid" once the secret has matched.
   */
  async authenticate(presented: string): Promise<AuthenticationResult> {
    const parsed = parseApiKey(presented);
    if (parsed === null) return { ok: false, reason: 'malformed', keyId: null };
    const key = await getKey(this.#storage.db, parsed.id);
    if (key === null) return { ok: false, reason: 'unknown', keyId: parsed.id };
    if (!secretMatches(parsed.secret, key.digest)) return { ok: false, reason: 'mismatch', keyId: parsed.id };
    const status = keyStatus(key, this.#now());
    if (status !== 'active') return { ok: false, reason: status, keyId: parsed.id };
    return { ok: true, key };
  }

  /** Notes a use in memory; written by the next flush. */
  touch(id: string, now: number = this.#now()): void {
    this.#pendingUses.set(id, isoNow(now));
  }

  /** Writes the noted uses in one transaction. Safe to call concurrently (calls are serialised). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pendingUses.size === 0) return;
      const batch = this.#pendingUses;
      this.#pendingUses = new Map();
      try {
        await this.#storage.transaction((trx) => recordLastUsed(trx, batch));
      } catch (error) {
        // Put the uses back (newer ones noted meanwhile win) and try again next time.
        for (const [id, at] of batch) if (!this.#pendingUses.has(id)) this.#pendingUses.set(id, at);
        this.#logger?.warn({ err: error }, 'could not record API key last-use times; will retry');
      }
    });
    return this.#flushing;
  }

  startFlushing(intervalMs: number): void {
    this.#flushTimer = setInterval(() => void this.flush(), intervalMs);
    this.#flushTimer.unref();
  }

  async stopFlushing(): Promise<void> {
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.flush();
  }

  #view(record: ApiKeyRecord): ApiKeyView {
    const pending = this.#pendingUses.get(record.id);
    const lastUsed = pending !== undefined && (record.lastUsedAt === null || pending > record.lastUsedAt) ? pending : record.lastUsedAt;
    return {
      id: record.id,
      label: record.label,
      scopes: record.scopes,
      status: keyStatus(record, this.#now()),
      created_at: record.createdAt,
      expires_at: record.expiresAt,
      revoked_at: record.revokedAt,
      last_used_at: lastUsed,
    };
  }
}
