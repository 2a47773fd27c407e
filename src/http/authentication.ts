/**
 * The API key authentication hook, registered once at the application level (not encapsulated),
 * so it runs for every route whichever plugin declared it. For each request it reads the route's
 * `config.auth` (src/foundation/rest/principal.ts) and:
 *
 * - `none`: nothing to do;
 * - `api_key`: requires a key in `Authorization: Bearer <key>` or `X-API-Key: <key>`, checks it
 *   (src/domains/api-keys/service.ts), applies the per-key rate limit and the route's scope;
 * - `provider_or_api_key`: the same when an API key is presented, otherwise leaves the request to
 *   the provider credential hook (src/domains/providers/);
 * - `provider`: left to the provider credential hook;
 * - a route under /v1 without `auth`: refused (deny by default).
 *
 * A backstop at preHandler refuses any route whose auth is not `none` when no hook has set a
 * principal by then, so a missing or failed hook can never open a route.
 *
 * Limits, per instance (see ./rate-limit.ts for why in memory):
 * - each key: `api.rate_limit_per_minute`, answered 429 with Retry-After and RateLimit headers;
 * - each client address (src/foundation/rest/client-address.ts: behind a proxy listed in
 *   `server.trusted_proxies`, the address it forwards; an IPv6 client by its /64):
 *   `api.auth_failure_limit_per_minute` failed authentications (a presented
 *   API key or provider credential refused with 401); beyond it every request from that address
 *   that presents a credential is refused with 429 until the bucket refills, valid credential or
 *   not, so guessing gets nowhere, and the lockout is audited (`api.auth_lockout`).
 *
 * Console operators (src/domains/operators/): on a route that takes API keys, a request presenting no API
 * key or provider credential but the `neuron_session` cookie is authenticated by `operatorSession`
 * (which also checks the CSRF token of a state change); the operator's role gives the scopes, and
 * each operator has the per-key request limit.
 *
 * Authentication runs at onRequest, before the body is read and validated, so a caller without a
 * valid key learns nothing about the route's input or whether a resource exists.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { AuditLog } from '../domains/audit/index.ts';
import { NeuronError } from '../foundation/errors/index.ts';
import type { ApiKeyService } from '../domains/api-keys/service.ts';
import { looksLikeApiKey } from '../domains/api-keys/format.ts';
import { routeAuth, scopeAllows, type Principal } from '../foundation/rest/principal.ts';
import { limitKey } from '../foundation/rest/client-address.ts';
import { LIMIT_AUDIT_INTERVAL_MS, MAX_BUCKETS, OncePerInterval, TokenBuckets, rateLimitHeaders } from '../foundation/rest/rate-limit.ts';

const REALM = 'Bearer realm="neuron"';

export interface AuthenticationOptions {
  apiKeys: ApiKeyService;
  audit: AuditLog;
  logger: Logger;
  rateLimitPerMinute: number;
  authFailureLimitPerMinute: number;
  metrics: Registry;
  /** The console operator for the request's session cookie, or null without one (src/domains/operators/session-auth.ts). */
  operatorSession?: (request: FastifyRequest) => Promise<Principal | null>;
  now?: () => number;
}

type Presented = { key: string } | null;

/** Set on a request whose failed authentication this hook has already counted. */
const FAILURE_COUNTED = Symbol('neuron.authFailureCounted');

/** Whether the request carries any credential (API key or provider credential). */
function presentsCredential(request: FastifyRequest): boolean {
  return request.headers['x-api-key'] !== undefined || request.headers.authorization !== undefined;
}

/** The key from `X-API-Key` or `Authorization: Bearer`; with `bearerMustBeKey` false, a non-key bearer is someone else's credential. */
function presentedKey(request: FastifyRequest, bearerMustBeKey: boolean): Presented {
  const header = request.headers['x-api-key'];
  const fromHeader = Array.isArray(header) ? header.join(',') : header;
  const authorization = request.headers.authorization;
  let fromBearer: string | undefined;
  if (authorization !== undefined) {
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(authorization);
    const token = match?.[1];
    if (token !== undefined && looksLikeApiKey(token)) fromBearer = token;
    else if (bearerMustBeKey && fromHeader === undefined) fromBearer = token ?? authorization;
  }
  if (fromHeader !== undefined && fromBearer !== undefined && fromHeader !== fromBearer) {
    throw new NeuronError('UNAUTHENTICATED', {
      message: 'send the API key in one header only (Authorization or X-API-Key)',
      headers: { 'WWW-Authenticate': `${REALM}, error="invalid_request"` },
    });
  }
  const key = fromHeader ?? fromBearer;
  return key === undefined ? null : { key };
}

const FAILURE_MESSAGES: Record<string, string> = {
  malformed: 'the API key is not valid',
  unknown: 'the API key is not valid',
  mismatch: 'the API key is not valid',
  revoked: 'the API key has been revoked',
  expired: 'the API key has expired',
};

export function authentication(options: AuthenticationOptions): FastifyPluginAsync {
  const now = options.now ?? Date.now;
  const perKey = new TokenBuckets(options.rateLimitPerMinute, MAX_BUCKETS);
  const failures = new TokenBuckets(options.authFailureLimitPerMinute, MAX_BUCKETS);
  const lockoutAudits = new OncePerInterval(LIMIT_AUDIT_INTERVAL_MS, MAX_BUCKETS);

  const authFailures = new Counter({
    name: 'neuron_api_auth_failures_total',
    help: 'API requests refused because the presented API key was not valid, by reason',
    labelNames: ['reason'],
    registers: [options.metrics],
  });
  const rateLimited = new Counter({
    name: 'neuron_api_rate_limited_total',
    help: 'API requests refused with 429, by limit (key or auth_failures)',
    labelNames: ['limit'],
    registers: [options.metrics],
  });
  const requests = new Counter({
    name: 'neuron_api_requests_total',
    help: 'REST API requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'],
    registers: [options.metrics],
  });

  async function noteFailure(request: FastifyRequest, reason: string, keyId: string | null): Promise<void> {
    (request as unknown as Record<symbol, boolean>)[FAILURE_COUNTED] = true;
    authFailures.inc({ reason });
    const at = now();
    const address = request.clientAddress;
    const key = limitKey(address);
    failures.take(key, at);
    if (failures.peek(key, at).allowed) return;
    if (!lockoutAudits.take(key, at)) return;
    options.logger.warn(
      { clientIp: address, keyId },
      'API authentication failures over the limit; refusing keys from this address for now',
    );
    try {
      await options.audit.record({
        type: 'api.auth_lockout',
        actor: 'system',
        details: { client_ip: address, key_id: keyId, failures_per_minute_limit: options.authFailureLimitPerMinute, last_reason: reason },
      });
    } catch (error) {
      options.logger.error({ err: error }, 'could not audit an API authentication lockout');
    }
  }

  /** Refuses any credential from an address that is over its failed-authentication limit. */
  function refuseIfLockedOut(request: FastifyRequest, at: number): void {
    const lockout = failures.peek(limitKey(request.clientAddress), at);
    if (!lockout.allowed) {
      rateLimited.inc({ limit: 'auth_failures' });
      throw new NeuronError('RATE_LIMITED', {
        message: 'too many failed authentication attempts from this address; retry later',
        headers: { 'Retry-After': String(lockout.retryAfterSeconds) },
      });
    }
  }

  async function authenticateKey(
    request: FastifyRequest,
    reply: FastifyReply,
    presented: string,
    scope: 'read' | 'write' | 'admin',
  ): Promise<void> {
    const at = now();
    refuseIfLockedOut(request, at);
    const result = await options.apiKeys.authenticate(presented);
    if (!result.ok) {
      await noteFailure(request, result.reason, result.keyId);
      throw new NeuronError('UNAUTHENTICATED', {
        message: FAILURE_MESSAGES[result.reason],
        headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token"` },
      });
    }
    const key = result.key;
    const bucket = perKey.take(key.id, at);
    const headers = rateLimitHeaders(bucket);
    if (!bucket.allowed) {
      rateLimited.inc({ limit: 'key' });
      throw new NeuronError('RATE_LIMITED', {
        message: `this API key is over its limit of ${bucket.limit} requests per minute; retry later`,
        headers: { ...headers, 'Retry-After': String(bucket.retryAfterSeconds) },
      });
    }
    void reply.headers(headers);
    options.apiKeys.touch(key.id, at);
    request.principal = { kind: 'api_key', keyId: key.id, label: key.label, scopes: key.scopes };
    if (!scopeAllows(key.scopes, scope)) {
      throw new NeuronError('FORBIDDEN', { message: `this route needs an API key with the ${scope} scope` });
    }
  }

  /** True when the request was authenticated by a console session cookie. */
  async function authenticateOperator(request: FastifyRequest, reply: FastifyReply, scope: 'read' | 'write' | 'admin'): Promise<boolean> {
    if (options.operatorSession === undefined) return false;
    const principal = await options.operatorSession(request);
    if (principal === null || principal.kind !== 'operator') return false;
    const bucket = perKey.take(`operator:${principal.name}`, now());
    if (!bucket.allowed) {
      rateLimited.inc({ limit: 'key' });
      throw new NeuronError('RATE_LIMITED', {
        message: `this operator is over the limit of ${bucket.limit} requests per minute; retry later`,
        headers: { ...rateLimitHeaders(bucket), 'Retry-After': String(bucket.retryAfterSeconds) },
      });
    }
    void reply.headers(rateLimitHeaders(bucket));
    request.principal = principal;
    if (!scopeAllows(principal.scopes, scope)) {
      throw new NeuronError('FORBIDDEN', {
        message: `this route needs the ${scope} scope, which the ${principal.role} role does not have`,
      });
    }
    return true;
  }

  const plugin: FastifyPluginAsync = async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      const auth = routeAuth(request);
      if (auth === undefined) {
        const pattern = request.routeOptions.url;
        if (pattern !== undefined && (pattern === '/v1' || pattern.startsWith('/v1/'))) {
          throw new NeuronError('FORBIDDEN', { message: 'this route does not declare its authentication' });
        }
        return;
      }
      switch (auth.kind) {
        case 'none':
          return;
        case 'provider':
          // The provider credential hook checks it; an address locked out gets no further.
          if (presentsCredential(request)) refuseIfLockedOut(request, now());
          return;
        case 'provider_or_api_key': {
          const presented = presentedKey(request, false);
          if (presented === null) {
            if (presentsCredential(request)) refuseIfLockedOut(request, now());
            else await authenticateOperator(request, reply, auth.scope);
            return;
          }
          return authenticateKey(request, reply, presented.key, auth.scope);
        }
        case 'api_key': {
          const presented = presentedKey(request, true);
          if (presented === null && !presentsCredential(request) && (await authenticateOperator(request, reply, auth.scope))) return;
          if (presented === null) {
            throw new NeuronError('UNAUTHENTICATED', {
              message: 'this route needs an API key in the Authorization (Bearer) or X-API-Key header',
              headers: { 'WWW-Authenticate': REALM },
            });
          }
          return authenticateKey(request, reply, presented.key, auth.scope);
        }
        default:
          throw new NeuronError('FORBIDDEN', { message: 'this route declares an unknown kind of authentication' });
      }
    });

    // Backstop: whatever hooks exist, a route that needs a credential never runs without a principal.
    app.addHook('preHandler', async (request) => {
      const auth = routeAuth(request);
      if (auth !== undefined && auth.kind !== 'none' && request.principal === null) {
        throw new NeuronError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': REALM } });
      }
    });

    app.addHook('onResponse', async (request, reply) => {
      requests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
      // A credential refused by another hook (a provider credential) counts against the address too.
      if (reply.statusCode === 401 && presentsCredential(request) && !(request as unknown as Record<symbol, boolean>)[FAILURE_COUNTED]) {
        const auth = routeAuth(request);
        if (auth !== undefined && auth.kind !== 'none') await noteFailure(request, 'credential', null);
      }
    });
  };
  // Not encapsulated: the hooks apply to every route of the application (fastify-plugin's marker).
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
