/**
 * The authentication hook's limits and counters (src/http/authentication.ts): the per-key request
 * limit, the per-address limit on failed authentications with its audited lockout, and the
 * Prometheus counters of both. In memory, per instance (see src/foundation/rest/rate-limit.ts).
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { NeuronError } from '../foundation/errors/index.ts';
import { limitKey } from '../foundation/rest/client-address.ts';
import { LIMIT_AUDIT_INTERVAL_MS, MAX_BUCKETS, OncePerInterval, TokenBuckets, rateLimitHeaders } from '../foundation/rest/rate-limit.ts';

/**
 * Where a lockout is recorded (`api.auth_lockout`). The composition root passes the audit log,
 * which implements it; the HTTP kit imports no domain.
 */
export interface SecurityAuditRecorder {
  record(event: { type: string; actor: string; details: Record<string, unknown> }): Promise<unknown>;
}

export interface AuthenticationLimitsOptions {
  audit: SecurityAuditRecorder;
  logger: Logger;
  rateLimitPerMinute: number;
  authFailureLimitPerMinute: number;
  metrics: Registry;
  now: () => number;
}

/** Set on a request whose failed authentication has already been counted. */
const FAILURE_COUNTED = Symbol('neuron.authFailureCounted');

export class AuthenticationLimits {
  readonly #options: AuthenticationLimitsOptions;
  readonly #perCaller: TokenBuckets;
  readonly #failures: TokenBuckets;
  readonly #lockoutAudits = new OncePerInterval({ intervalMs: LIMIT_AUDIT_INTERVAL_MS, maxEntries: MAX_BUCKETS });
  readonly #authFailures: Counter<'reason'>;
  readonly #rateLimited: Counter<'limit'>;
  readonly #requests: Counter<'method' | 'route' | 'status'>;

  constructor(options: AuthenticationLimitsOptions) {
    this.#options = options;
    this.#perCaller = new TokenBuckets({ limit: options.rateLimitPerMinute, maxEntries: MAX_BUCKETS });
    this.#failures = new TokenBuckets({ limit: options.authFailureLimitPerMinute, maxEntries: MAX_BUCKETS });
    this.#authFailures = new Counter({
      name: 'neuron_api_auth_failures_total',
      help: 'API requests refused because the presented API key was not valid, by reason',
      labelNames: ['reason'],
      registers: [options.metrics],
    });
    this.#rateLimited = new Counter({
      name: 'neuron_api_rate_limited_total',
      help: 'API requests refused with 429, by limit (key or auth_failures)',
      labelNames: ['limit'],
      registers: [options.metrics],
    });
    this.#requests = new Counter({
      name: 'neuron_api_requests_total',
      help: 'REST API requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [options.metrics],
    });
  }

  /** Counts an answered request (method, route pattern, status). */
  answered(request: FastifyRequest, status: number): void {
    this.#requests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(status) });
  }

  /** Whether this request's failed authentication was already counted. */
  counted(request: FastifyRequest): boolean {
    return (request as unknown as Record<symbol, boolean>)[FAILURE_COUNTED] === true;
  }

  /** Counts a failed authentication against the address; audits the lockout once per interval. */
  async noteFailure(request: FastifyRequest, reason: string, keyId: string | null): Promise<void> {
    (request as unknown as Record<symbol, boolean>)[FAILURE_COUNTED] = true;
    this.#authFailures.inc({ reason });
    const at = this.#options.now();
    const address = request.clientAddress;
    const key = limitKey(address);
    this.#failures.take(key, at);
    if (this.#failures.peek(key, at).allowed) return;
    if (!this.#lockoutAudits.take(key, at)) return;
    const { logger } = this.#options;
    logger.warn({ clientIp: address, keyId }, 'API authentication failures over the limit; refusing keys from this address for now');
    try {
      await this.#options.audit.record({
        type: 'api.auth_lockout',
        actor: 'system',
        details: {
          client_ip: address,
          key_id: keyId,
          failures_per_minute_limit: this.#options.authFailureLimitPerMinute,
          last_reason: reason,
        },
      });
    } catch (error) {
      logger.error({ err: error }, 'could not audit an API authentication lockout');
    }
  }

  /** Refuses any credential from an address that is over its failed-authentication limit. */
  refuseIfLockedOut(request: FastifyRequest, at: number): void {
    const lockout = this.#failures.peek(limitKey(request.clientAddress), at);
    if (!lockout.allowed) {
      this.#rateLimited.inc({ limit: 'auth_failures' });
      throw new NeuronError('RATE_LIMITED', {
        message: 'too many failed authentication attempts from this address; retry later',
        headers: { 'Retry-After': String(lockout.retryAfterSeconds) },
      });
    }
  }

  /**
   * Takes one request from the caller's per-minute allowance (an API key id, or `operator:<name>`)
   * and returns the RateLimit headers; over the limit, a RATE_LIMITED error with `overLimit`'s message.
   */
  takeRequest(caller: string, at: number, overLimit: (limit: number) => string): Record<string, string> {
    const bucket = this.#perCaller.take(caller, at);
    const headers = rateLimitHeaders(bucket);
    if (!bucket.allowed) {
      this.#rateLimited.inc({ limit: 'key' });
      throw new NeuronError('RATE_LIMITED', {
        message: overLimit(bucket.limit),
        headers: { ...headers, 'Retry-After': String(bucket.retryAfterSeconds) },
      });
    }
    return headers;
  }
}
