/**
 * Operators of the console: who may sign in (managed with `neuron operator …`), sign-in with its
 * limits, and sessions kept in the database so every instance behind a load balancer shares them.
 *
 * - Passwords: scrypt with the parameters of console.scrypt.* (./passwords.ts).
 * - Sign-in: at most console.signin_limit_per_minute attempts per client address (in memory, per
 *   instance, like the API's other limits: src/foundation/rest/rate-limit.ts), and a lockout of one operator
 *   name for console.lockout_ms after console.lockout_failures failures in a row (in the database,
 *   so it holds across instances). An unknown name is answered exactly like a wrong password, in
 *   the same time, and is locked out the same way (in memory), so nothing tells whether a name
 *   exists. Every success, failure and lockout is audited with the name, never the password.
 * - Sessions: a 256-bit random token in the cookie; the database keeps only its SHA-256. A session
 *   ends after console.session_idle_ms without use, console.session_absolute_ms after sign-in, at
 *   sign-out, and when the operator is removed or their password reset.
 * - CSRF: the session's CSRF token is derived from the session token (a SHA-256 under a fixed
 *   label), so only a holder of the cookie's value can know it and nothing more is stored.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { NeuronConfig } from '../../foundation/config/index.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import { limitKey } from '../../foundation/rest/client-address.ts';
import { LIMIT_AUDIT_INTERVAL_MS, MAX_BUCKETS, OncePerInterval, TokenBuckets } from '../../foundation/rest/rate-limit.ts';
import { decoyHash, generatePassword, hashPassword, verifyPassword } from './passwords.ts';
import type { OperatorRole } from './schemas.ts';
import {
  countOperators,
  deleteEndedSessions,
  deleteOperator,
  deleteSession,
  deleteSessionsOf,
  getOperator,
  getSession,
  insertOperator,
  insertSession,
  listOperators,
  setPassword,
  setSigninState,
  touchSession,
  type SessionRecord,
} from './store.ts';

export type ConsoleSettings = NeuronConfig['console'];

export interface OperatorView {
  name: string;
  role: OperatorRole;
  created_at: string;
  updated_at: string;
  /** When a lockout is in force, its end. */
  locked_until: string | null;
}

export interface SessionView {
  operator: { name: string; role: OperatorRole };
  csrf_token: string;
  expires_at: string;
}

export interface OperatorServiceOptions {
  storage: Storage;
  audit: AuditLog;
  settings: ConsoleSettings;
  logger?: Logger;
  now?: () => number;
}

/** 256 bits, base64url: the session token in the cookie. */
const SESSION_TOKEN_BYTES = 32;
const SESSION_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Separates the CSRF derivation from any other use of a hash of the token. */
const CSRF_LABEL = 'neuron console csrf\0';

export function sessionDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function csrfTokenFor(token: string): string {
  return createHash('sha256').update(CSRF_LABEL).update(token).digest('base64url');
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined) return false;
  const expected = Buffer.from(csrfTokenFor(token));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface UnknownNameFailures {
  failures: number;
  lockedUntil: number;
}

export class OperatorService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;
  readonly #settings: ConsoleSettings;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #perAddress: TokenBuckets;
  readonly #limitAudits = new OncePerInterval({ intervalMs: LIMIT_AUDIT_INTERVAL_MS, maxEntries: MAX_BUCKETS });
  /** Failures of names that do not exist, so they lock out like real ones (bounded like the buckets). */
  readonly #unknownNames = new Map<string, UnknownNameFailures>();
  #decoy: Promise<string> | undefined;

  constructor(options: OperatorServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#perAddress = new TokenBuckets({ limit: options.settings.signin_limit_per_minute, maxEntries: MAX_BUCKETS });
  }

  // ---- operators (the CLI) ----

  /** Refuses a password shorter than console.password_min_length. */
  checkPassword(password: string): void {
    if ([...password].length < this.#settings.password_min_length) {
      throw new NeuronError('VALIDATION_FAILED', {
        message: `the password must be at least ${this.#settings.password_min_length} characters long (console.password_min_length)`,
      });
    }
  }

  generatePassword(): string {
    return generatePassword(this.#settings.password_min_length);
  }

  async add(input: { name: string; role: OperatorRole; password: string; actor: string }): Promise<OperatorView> {
    this.checkPassword(input.password);
    const passwordHash = await hashPassword(input.password, this.#settings.scrypt);
    const now = this.#now();
    const at = isoNow(now);
    const record = { name: input.name, role: input.role, passwordHash, failedSignins: 0, lockedUntil: null, createdAt: at, updatedAt: at };
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      if ((await getOperator(trx, input.name)) !== null)
        throw new NeuronError('CONFLICT', { message: `an operator named ${input.name} already exists` });
      await insertOperator(trx, record);
      await this.#audit.append(trx, { type: 'operator.added', actor: input.actor, details: { name: input.name, role: input.role } }, now);
    });
    return this.#view(record);
  }

  async list(): Promise<OperatorView[]> {
    return (await listOperators(this.#storage.db)).map((record) => this.#view(record));
  }

  async count(): Promise<number> {
    return countOperators(this.#storage.db);
  }

  /** Removes the operator and ends every session of theirs. */
  async remove(name: string, actor: string): Promise<void> {
    const now = this.#now();
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      const sessions = await deleteSessionsOf(trx, name);
      if (!(await deleteOperator(trx, name))) throw new NeuronError('NOT_FOUND', { message: `no operator named ${name}` });
      await this.#audit.append(trx, { type: 'operator.removed', actor, details: { name, sessions_ended: sessions } }, now);
    });
  }

  /** A new password; ends every session of the operator and lifts a lockout. */
  async resetPassword(name: string, password: string, actor: string): Promise<void> {
    this.checkPassword(password);
    const passwordHash = await hashPassword(password, this.#settings.scrypt);
    const now = this.#now();
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      if (!(await setPassword(trx, name, passwordHash, isoNow(now))))
        throw new NeuronError('NOT_FOUND', { message: `no operator named ${name}` });
      const sessions = await deleteSessionsOf(trx, name);
      await this.#audit.append(trx, { type: 'operator.password_reset', actor, details: { name, sessions_ended: sessions } }, now);
    });
  }

  // ---- sign-in ----

  /** Throws RATE_LIMITED, OPERATOR_LOCKED or INVALID_CREDENTIALS; on success the new session's token and view. */
  async signIn(input: { name: string; password: string; clientAddress: string }): Promise<{ token: string; view: SessionView }> {
    const now = this.#now();
    await this.#takeAddressAllowance(input.clientAddress, now);
    const operator = await getOperator(this.#storage.db, input.name);
    if (operator === null) return this.#refuseUnknownName(input, now);
    if (operator.lockedUntil !== null && Date.parse(operator.lockedUntil) > now) {
      await this.#auditSignin('console.signin_failed', { name: input.name, client_ip: input.clientAddress, reason: 'locked' });
      throw this.#lockedError(Date.parse(operator.lockedUntil) - now);
    }
    if (!(await verifyPassword(input.password, operator.passwordHash))) return this.#noteFailure(input, now);

    const token = randomBytes(SESSION_TOKEN_BYTES).toString('base64url');
    const digest = sessionDigest(token);
    const at = isoNow(now);
    const expiresAt = isoNow(now + this.#settings.session_absolute_ms);
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      // Housekeeping in passing: sessions nobody will present again.
      await deleteEndedSessions(trx, at, isoNow(now - this.#settings.session_idle_ms));
      await insertSession(trx, { tokenDigest: digest, operatorName: operator.name, createdAt: at, lastSeenAt: at, expiresAt });
      if (operator.failedSignins !== 0 || operator.lockedUntil !== null) await setSigninState(trx, operator.name, 0, null);
      await this.#audit.append(
        trx,
        {
          type: 'console.signed_in',
          actor: `operator:${operator.name}`,
          details: { name: operator.name, role: operator.role, client_ip: input.clientAddress, session: digest.slice(0, 16) },
        },
        now,
      );
    });
    const record: SessionRecord = {
      tokenDigest: digest,
      operatorName: operator.name,
      role: operator.role,
      createdAt: at,
      lastSeenAt: at,
      expiresAt,
    };
    return { token, view: this.sessionView(record, token) };
  }

  async #takeAddressAllowance(clientAddress: string, now: number): Promise<void> {
    const key = limitKey(clientAddress);
    const bucket = this.#perAddress.take(key, now);
    if (bucket.allowed) return;
    if (this.#limitAudits.take(key, now)) {
      await this.#auditSignin('console.signin_limited', {
        client_ip: clientAddress,
        signins_per_minute_limit: this.#settings.signin_limit_per_minute,
      });
    }
    throw new NeuronError('RATE_LIMITED', {
      message: 'too many sign-in attempts from this address; retry later',
      headers: { 'Retry-After': String(bucket.retryAfterSeconds) },
    });
  }

  /** A wrong password: counts the failure (in the database), locking the name at the limit. */
  async #noteFailure(input: { name: string; clientAddress: string }, now: number): Promise<never> {
    const locked = await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      // Read again under the lock: failures from other instances count too.
      const current = await getOperator(trx, input.name);
      if (current === null) return false;
      const failures = current.failedSignins + 1;
      const lock = failures >= this.#settings.lockout_failures;
      await setSigninState(trx, input.name, lock ? 0 : failures, lock ? isoNow(now + this.#settings.lockout_ms) : current.lockedUntil);
      await this.#audit.append(
        trx,
        lock
          ? {
              type: 'console.signin_lockout',
              actor: 'anonymous',
              details: { name: input.name, client_ip: input.clientAddress, failures, lockout_ms: this.#settings.lockout_ms },
            }
          : {
              type: 'console.signin_failed',
              actor: 'anonymous',
              details: { name: input.name, client_ip: input.clientAddress, reason: 'invalid_credentials', failures },
            },
        now,
      );
      return lock;
    });
    if (locked) throw this.#lockedError(this.#settings.lockout_ms);
    throw new NeuronError('INVALID_CREDENTIALS', { message: 'the operator name or password is not correct' });
  }

  /** An unknown name: the same work, answers and audit entries as a wrong password. */
  async #refuseUnknownName(input: { name: string; password: string; clientAddress: string }, now: number): Promise<never> {
    const state = this.#unknownNames.get(input.name);
    if (state !== undefined && state.lockedUntil > now) {
      await this.#auditSignin('console.signin_failed', { name: input.name, client_ip: input.clientAddress, reason: 'locked' });
      throw this.#lockedError(state.lockedUntil - now);
    }
    this.#decoy ??= decoyHash(this.#settings.scrypt);
    await verifyPassword(input.password, await this.#decoy);
    if (this.#unknownNames.size >= MAX_BUCKETS) this.#unknownNames.clear();
    const failures = (state !== undefined && state.lockedUntil === 0 ? state.failures : 0) + 1;
    if (failures >= this.#settings.lockout_failures) {
      this.#unknownNames.set(input.name, { failures: 0, lockedUntil: now + this.#settings.lockout_ms });
      await this.#auditSignin('console.signin_lockout', {
        name: input.name,
        client_ip: input.clientAddress,
        failures,
        lockout_ms: this.#settings.lockout_ms,
      });
      throw this.#lockedError(this.#settings.lockout_ms);
    }
    this.#unknownNames.set(input.name, { failures, lockedUntil: 0 });
    await this.#auditSignin('console.signin_failed', {
      name: input.name,
      client_ip: input.clientAddress,
      reason: 'invalid_credentials',
      failures,
    });
    throw new NeuronError('INVALID_CREDENTIALS', { message: 'the operator name or password is not correct' });
  }

  #lockedError(remainingMs: number): NeuronError {
    return new NeuronError('OPERATOR_LOCKED', {
      message: 'too many failed sign-ins for this operator; retry later or ask an administrator to reset the password',
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(remainingMs / 1000))) },
    });
  }

  async #auditSignin(type: string, details: Record<string, unknown>): Promise<void> {
    try {
      await this.#audit.record({ type, actor: 'anonymous', details });
    } catch (error) {
      this.#logger?.error({ err: error }, 'could not audit a console sign-in attempt');
    }
  }

  // ---- sessions ----

  /**
   * The live session for a presented token, its last use noted at most every
   * console.session_touch_interval_ms; SESSION_EXPIRED when there is none (ended, expired, unknown).
   */
  async authenticate(token: string): Promise<SessionRecord> {
    const now = this.#now();
    const ended = new NeuronError('SESSION_EXPIRED', { message: 'the console session has ended or expired; sign in again' });
    if (!SESSION_TOKEN_PATTERN.test(token)) throw ended;
    const session = await getSession(this.#storage.db, sessionDigest(token));
    if (session === null) throw ended;
    if (Date.parse(session.expiresAt) <= now || Date.parse(session.lastSeenAt) + this.#settings.session_idle_ms <= now) {
      await deleteSession(this.#storage.db, session.tokenDigest);
      throw ended;
    }
    if (now - Date.parse(session.lastSeenAt) >= this.#settings.session_touch_interval_ms) {
      const at = isoNow(now);
      await touchSession(this.#storage.db, session.tokenDigest, at);
      return { ...session, lastSeenAt: at };
    }
    return session;
  }

  /** Ends the session server-side; audited. */
  async signOut(session: SessionRecord): Promise<void> {
    const now = this.#now();
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      if (!(await deleteSession(trx, session.tokenDigest))) return;
      await this.#audit.append(
        trx,
        {
          type: 'console.signed_out',
          actor: `operator:${session.operatorName}`,
          details: { name: session.operatorName, session: session.tokenDigest.slice(0, 16) },
        },
        now,
      );
    });
  }

  sessionView(session: SessionRecord, token: string): SessionView {
    const end = Math.min(Date.parse(session.lastSeenAt) + this.#settings.session_idle_ms, Date.parse(session.expiresAt));
    return { operator: { name: session.operatorName, role: session.role }, csrf_token: csrfTokenFor(token), expires_at: isoNow(end) };
  }

  /** Seconds a new session's cookie may live: until the session's absolute end. */
  cookieMaxAgeSeconds(): number {
    return Math.floor(this.#settings.session_absolute_ms / 1000);
  }

  #view(record: { name: string; role: OperatorRole; createdAt: string; updatedAt: string; lockedUntil: string | null }): OperatorView {
    const locked = record.lockedUntil !== null && Date.parse(record.lockedUntil) > this.#now();
    return {
      name: record.name,
      role: record.role,
      created_at: record.createdAt,
      updated_at: record.updatedAt,
      locked_until: locked ? record.lockedUntil : null,
    };
  }
}
