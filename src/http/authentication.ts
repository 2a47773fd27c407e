/**
 * The API key authentication hook, registered once at the application level (not encapsulated),
 * so it runs for every route whichever plugin declared it. For each request it reads the route's
 * `config.auth` (src/foundation/rest/principal.ts) and:
 *
 * - `none`: nothing to do;
 * - `api_key`: requires a key in `Authorization: Bearer <key>` or `X-API-Key: <key>`, checks it
 *   (with the verifier the composition root passes: src/domains/api-keys/), applies the per-key rate limit and the route's scope;
 * - `provider_or_api_key`: the same when an API key is presented, otherwise leaves the request to
 *   the provider credential hook (src/domains/providers/);
 * - `provider`: left to the provider credential hook;
 * - a route under /v1 without `auth`: refused (deny by default).
 *
 * A backstop at preHandler refuses any route whose auth is not `none` when no hook has set a
 * principal by then, so a missing or failed hook can never open a route.
 *
 * Limits, per instance (./authentication-limits.ts; src/foundation/rest/rate-limit.ts says why in memory):
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
import type { Registry } from 'prom-client';
import { NeuronError } from '../foundation/errors/index.ts';
import { routeAuth, scopeAllows, type Principal, type Scope } from '../foundation/rest/principal.ts';
import { AuthenticationLimits, type SecurityAuditRecorder } from './authentication-limits.ts';

export type { SecurityAuditRecorder } from './authentication-limits.ts';

const REALM = 'Bearer realm="neuron"';

/** What the hook needs of the API keys: src/domains/api-keys/'s ApiKeyService implements it. */
export interface ApiKeyVerifier {
  authenticate(presented: string): Promise<ApiKeyCheck>;
  /** Notes that the key was used (its last-used time). */
  touch(keyId: string, at: number): void;
}

export type ApiKeyCheck =
  | { ok: true; key: { id: string; label: string; scopes: readonly Scope[] } }
  /** `keyId` is set when the presented text named a key id (non-secret), for the audit of brute force. */
  | { ok: false; reason: 'malformed' | 'unknown' | 'mismatch' | 'revoked' | 'expired'; keyId: string | null };

export interface AuthenticationOptions {
  apiKeys: ApiKeyVerifier;
  /** Whether a bearer token has the shape of one of our API keys (else it is another kind of credential). */
  looksLikeApiKey: (token: string) => boolean;
  /** Where a lockout is audited: the audit log. */
  audit: SecurityAuditRecorder;
  logger: Logger;
  rateLimitPerMinute: number;
  authFailureLimitPerMinute: number;
  metrics: Registry;
  /** The console operator for the request's session cookie, or null without one (src/domains/operators/session-auth.ts). */
  operatorSession?: (request: FastifyRequest) => Promise<Principal | null>;
  now?: () => number;
}

type Presented = { key: string } | null;

/** Whether the request carries any credential (API key or provider credential). */
function presentsCredential(request: FastifyRequest): boolean {
  return request.headers['x-api-key'] !== undefined || request.headers.authorization !== undefined;
}

/** The key from `X-API-Key` or `Authorization: Bearer`; with `bearerMustBeKey` false, a non-key bearer is someone else's credential. */
function presentedKey(request: FastifyRequest, bearerMustBeKey: boolean, looksLikeApiKey: (token: string) => boolean): Presented {
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

/** The three ways a request is authenticated: by API key, by console session, or left to the provider credential hook. */
class Authenticator {
  readonly #options: AuthenticationOptions;
  readonly #limits: AuthenticationLimits;
  readonly #now: () => number;

  constructor(options: { options: AuthenticationOptions; limits: AuthenticationLimits; now: () => number }) {
    this.#options = options.options;
    this.#limits = options.limits;
    this.#now = options.now;
  }

  /** The onRequest hook: what the route's `config.auth` asks for. */
  async onRequest(request: FastifyRequest, reply: FastifyReply): Promise<void> {
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
        if (presentsCredential(request)) this.#limits.refuseIfLockedOut(request, this.#now());
        return;
      case 'provider_or_api_key': {
        const presented = presentedKey(request, false, this.#options.looksLikeApiKey);
        if (presented === null) {
          if (presentsCredential(request)) this.#limits.refuseIfLockedOut(request, this.#now());
          else await this.#operator(request, reply, auth.scope);
          return;
        }
        return this.#apiKey(request, reply, presented.key, auth.scope);
      }
      case 'api_key': {
        const presented = presentedKey(request, true, this.#options.looksLikeApiKey);
        if (presented === null && !presentsCredential(request) && (await this.#operator(request, reply, auth.scope))) return;
        if (presented === null) {
          throw new NeuronError('UNAUTHENTICATED', {
            message: 'this route needs an API key in the Authorization (Bearer) or X-API-Key header',
            headers: { 'WWW-Authenticate': REALM },
          });
        }
        return this.#apiKey(request, reply, presented.key, auth.scope);
      }
      default:
        throw new NeuronError('FORBIDDEN', { message: 'this route declares an unknown kind of authentication' });
    }
  }

  async #apiKey(request: FastifyRequest, reply: FastifyReply, presented: string, scope: Scope): Promise<void> {
    const at = this.#now();
    this.#limits.refuseIfLockedOut(request, at);
    const result = await this.#options.apiKeys.authenticate(presented);
    if (!result.ok) {
      await this.#limits.noteFailure(request, result.reason, result.keyId);
      throw new NeuronError('UNAUTHENTICATED', {
        message: FAILURE_MESSAGES[result.reason],
        headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token"` },
      });
    }
    const key = result.key;
    const headers = this.#limits.takeRequest(
      key.id,
      at,
      (limit) => `this API key is over its limit of ${limit} requests per minute; retry later`,
    );
    void reply.headers(headers);
    this.#options.apiKeys.touch(key.id, at);
    request.principal = { kind: 'api_key', keyId: key.id, label: key.label, scopes: key.scopes };
    if (!scopeAllows(key.scopes, scope)) {
      throw new NeuronError('FORBIDDEN', { message: `this route needs an API key with the ${scope} scope` });
    }
  }

  /** True when the request was authenticated by a console session cookie. */
  async #operator(request: FastifyRequest, reply: FastifyReply, scope: Scope): Promise<boolean> {
    if (this.#options.operatorSession === undefined) return false;
    const principal = await this.#options.operatorSession(request);
    if (principal === null || principal.kind !== 'operator') return false;
    const headers = this.#limits.takeRequest(
      `operator:${principal.name}`,
      this.#now(),
      (limit) => `this operator is over the limit of ${limit} requests per minute; retry later`,
    );
    void reply.headers(headers);
    request.principal = principal;
    if (!scopeAllows(principal.scopes, scope)) {
      throw new NeuronError('FORBIDDEN', {
        message: `this route needs the ${scope} scope, which the ${principal.role} role does not have`,
      });
    }
    return true;
  }
}

export function authentication(options: AuthenticationOptions): FastifyPluginAsync {
  const now = options.now ?? Date.now;
  const limits = new AuthenticationLimits({ ...options, now });
  const authenticator = new Authenticator({ options, limits, now });

  const plugin: FastifyPluginAsync = async (app) => {
    app.addHook('onRequest', (request, reply) => authenticator.onRequest(request, reply));

    // Backstop: whatever hooks exist, a route that needs a credential never runs without a principal.
    app.addHook('preHandler', async (request) => {
      const auth = routeAuth(request);
      if (auth !== undefined && auth.kind !== 'none' && request.principal === null) {
        throw new NeuronError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': REALM } });
      }
    });

    app.addHook('onResponse', async (request, reply) => {
      limits.answered(request, reply.statusCode);
      // A credential refused by another hook (a provider credential) counts against the address too.
      if (reply.statusCode === 401 && presentsCredential(request) && !limits.counted(request)) {
        const auth = routeAuth(request);
        if (auth !== undefined && auth.kind !== 'none') await limits.noteFailure(request, 'credential', null);
      }
    });
  };
  // Not encapsulated: the hooks apply to every route of the application (fastify-plugin's marker).
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
