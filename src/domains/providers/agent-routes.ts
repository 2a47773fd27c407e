/**
 * The provider CareAgent's own calls (the network's provider client), mounted by providerRoutes
 * (./routes.ts):
 *
 *   POST   /v1/providers/register             self-registration, unauthenticated, always pending;
 *                                             api.register_limit_per_minute per client address
 *   GET    /v1/providers/:registration_id/heartbeat     the registration id is the capability (no
 *   POST   /v1/providers/:registration_id/disconnect    header needed; a credential, if sent, must
 *                                                       match); rate-limited per client address
 *   GET    /v1/providers/:npi/relationships   pull feed of relationship notices (own NPI only;
 *                                             API keys with read scope may read any)
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/index.ts';
import { limitKey } from '../../foundation/rest/client-address.ts';
import { LIMIT_AUDIT_INTERVAL_MS, MAX_BUCKETS, OncePerInterval, TokenBuckets, rateLimitHeaders } from '../../foundation/rest/rate-limit.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { encodeCursor } from '../../foundation/storage/cursor.ts';
import { problems } from '../../foundation/rest/schemas.ts';
import type { Principal } from '../../foundation/rest/principal.ts';
import type { RouteApp } from '../../foundation/rest/route-app.ts';
import { FeedResponse, HeartbeatResponse, NpiParams, PageQuery, RegisterBody, RegisterResponse, RegistrationParams } from './schemas.ts';
import type { ProviderService } from './service.ts';
import { bearerToken, isProviderCredential } from './credentials.ts';
import { registrationPrefix } from './registration.ts';
import { bodyFields, REFUSED_URL } from './route-errors.ts';

const PROVIDER_AGENT_TAGS = ['provider CareAgent'];
const LIVENESS_PROBLEMS = {
  401: 'a provider credential was sent and is not valid (sending none is fine)',
  404: 'no such registration id (or a provider credential of another provider)',
  429: 'over api.register_limit_per_minute calls from this client address (RATE_LIMITED); see Retry-After',
};

/**
 * The request line of these routes carries the registration capability: their request log lines
 * show the path with the id cut to its prefix, whatever else a request logger records.
 */
const CAPABILITY_SAFE_SERIALIZERS = {
  req: (request: { method?: string; url?: string }) => ({ method: request.method, url: redactRegistrationPath(request.url ?? '') }),
};

export function redactRegistrationPath(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path.replace(
    /^(\/v1\/providers\/)([^/]*)/,
    (_whole, head: string, id: string) => `${head}${registrationPrefix(decodeURIComponentSafe(id))}…`,
  );
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
export interface CareAgentRouteOptions {
  service: ProviderService;
  /** api.register_limit_per_minute: unauthenticated self-registrations per client address. */
  registerLimitPerMinute: number;
  /** Records a client going over the registration limit (once per address and minute). */
  audit: AuditLog;
  now?: () => number;
}

interface CareAgentGuards {
  limitRegistrations: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  limitLiveness: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  optionalProviderCredential: (request: FastifyRequest) => Promise<Principal | null>;
}

/** The rate limits and the optional credential check of the CareAgent's unauthenticated calls. */
function careAgentGuards(options: CareAgentRouteOptions): CareAgentGuards {
  const { service } = options;
  const now = options.now ?? Date.now;
  // Per instance and in memory, like the API's other limits (src/foundation/rest/rate-limit.ts).
  const registrations = new TokenBuckets({ limit: options.registerLimitPerMinute, maxEntries: MAX_BUCKETS });
  const registrationAudits = new OncePerInterval({ intervalMs: LIMIT_AUDIT_INTERVAL_MS, maxEntries: MAX_BUCKETS });

  /** Before the body is read: every attempt from a client address counts, valid or not. */
  async function limitRegistrations(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const at = now();
    const address = request.clientAddress;
    const key = limitKey(address);
    const bucket = registrations.take(key, at);
    const headers = rateLimitHeaders(bucket);
    if (bucket.allowed) {
      void reply.headers(headers);
      return;
    }
    if (registrationAudits.take(key, at)) {
      request.log.warn({ clientIp: address }, 'provider self-registrations over the limit; refusing this address for now');
      try {
        await options.audit.record({
          type: 'provider.register_limited',
          actor: 'anonymous',
          details: { client_ip: address, registrations_per_minute_limit: options.registerLimitPerMinute },
        });
      } catch (error) {
        request.log.error({ err: error }, 'could not audit a provider registration limit');
      }
    }
    throw new NeuronError('RATE_LIMITED', {
      message: 'too many provider registrations from this address; retry later',
      headers: { ...headers, 'Retry-After': String(bucket.retryAfterSeconds) },
    });
  }

  // Heartbeat and disconnect: the same limit per client address as registration, in buckets of
  // their own, so a CareAgent's regular heartbeats never use up an office's registrations.
  const liveness = new TokenBuckets({ limit: options.registerLimitPerMinute, maxEntries: MAX_BUCKETS });

  async function limitLiveness(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const bucket = liveness.take(limitKey(request.clientAddress), now());
    const headers = rateLimitHeaders(bucket);
    if (!bucket.allowed) {
      throw new NeuronError('RATE_LIMITED', {
        message: 'too many provider heartbeats from this address; retry later',
        headers: { ...headers, 'Retry-After': String(bucket.retryAfterSeconds) },
      });
    }
    void reply.headers(headers);
  }

  /** None sent: the capability alone decides. One sent: it must be a valid provider credential. */
  async function optionalProviderCredential(request: FastifyRequest): Promise<Principal | null> {
    if (request.headers.authorization === undefined) return null;
    const token = bearerToken(request.headers.authorization);
    const principal = token !== null && isProviderCredential(token) ? await service.authenticate(token) : null;
    if (principal === null) {
      throw new NeuronError('UNAUTHENTICATED', {
        message: 'the Authorization header does not carry a valid provider credential; send none, or the one issued at approval',
        headers: { 'WWW-Authenticate': 'Bearer realm="neuron"' },
      });
    }
    return principal;
  }

  return { limitRegistrations, limitLiveness, optionalProviderCredential };
}

/** Registration, heartbeat and disconnect: the registration id is the capability. */
function registrationRoutes(app: RouteApp, service: ProviderService, guards: CareAgentGuards): void {
  const { limitRegistrations, limitLiveness, optionalProviderCredential } = guards;
  app.post(
    '/v1/providers/register',
    {
      // Unauthenticated by design: a registration is only ever pending until an operator approves it.
      config: { auth: { kind: 'none' } },
      onRequest: limitRegistrations,
      schema: {
        tags: PROVIDER_AGENT_TAGS,
        operationId: 'registerProvider',
        summary: 'A provider CareAgent asks to be listed (pending until approved)',
        description:
          "Public; no credential. The answer's `registration_id` names the registration in the provider CareAgent's later calls; the operator approves the provider before it is listed (docs/providers.md).",
        body: RegisterBody,
        response: {
          201: RegisterResponse,
          ...problems({
            ...REFUSED_URL,
            409: 'this NPI is already registered',
            429: 'over api.register_limit_per_minute registrations from this client address (RATE_LIMITED); see Retry-After',
          }),
        },
      },
    },
    async (request, reply) => {
      const registration = await bodyFields(service.register(request.body));
      return reply
        .code(201)
        .send({ registration_id: registration.registrationId, provider_id: registration.providerId, status: registration.status });
    },
  );

  app.get(
    '/v1/providers/:registration_id/heartbeat',
    {
      config: { auth: { kind: 'none' } },
      onRequest: limitLiveness,
      logSerializers: CAPABILITY_SAFE_SERIALIZERS,
      schema: {
        tags: PROVIDER_AGENT_TAGS,
        operationId: 'providerHeartbeat',
        summary: 'The provider CareAgent is alive (the registration id in the path is its capability)',
        description:
          "Needs no credential: the registration id from register is the capability. A provider credential may be sent; then it must be valid and this provider's.",
        params: RegistrationParams,
        response: { 200: HeartbeatResponse, ...problems(LIVENESS_PROBLEMS) },
      },
    },
    async (request) => {
      const beat = await service.heartbeat(request.params.registration_id, await optionalProviderCredential(request));
      return { status: beat.status, last_seen: beat.lastSeen, roster_status: beat.rosterStatus };
    },
  );

  app.post(
    '/v1/providers/:registration_id/disconnect',
    {
      config: { auth: { kind: 'none' } },
      onRequest: limitLiveness,
      logSerializers: CAPABILITY_SAFE_SERIALIZERS,
      schema: {
        tags: PROVIDER_AGENT_TAGS,
        operationId: 'providerDisconnect',
        summary: 'The provider CareAgent is going offline (kept on the roster; back with its next heartbeat)',
        description:
          "No credential and no body needed: the registration id from register is the capability. A provider credential may be sent; then it must be valid and this provider's.",
        params: RegistrationParams,
        response: { 200: HeartbeatResponse, ...problems(LIVENESS_PROBLEMS) },
      },
    },
    async (request) => {
      const beat = await service.disconnect(request.params.registration_id, await optionalProviderCredential(request));
      return { status: beat.status, last_seen: beat.lastSeen, roster_status: beat.rosterStatus };
    },
  );
}

/** The pull feed of relationship notices (the provider's own, or any for an API key with read). */
function relationshipFeedRoute(app: RouteApp, service: ProviderService, pageLimit: (limit: number | undefined) => number): void {
  app.get(
    '/v1/providers/:npi/relationships',
    {
      config: { auth: { kind: 'provider_or_api_key', scope: 'read' } },
      schema: {
        tags: PROVIDER_AGENT_TAGS,
        operationId: 'providerRelationshipFeed',
        summary: 'Relationship notices for this provider, in order; asking for what follows a cursor acknowledges the notices up to it',
        params: NpiParams,
        querystring: PageQuery,
        response: { 200: FeedResponse, ...problems({ 404: 'no such provider, or not the calling provider' }) },
      },
    },
    async (request) => {
      const principal = request.principal;
      const { npi } = request.params;
      // Deny by default, whichever authentication hook ran first.
      if (principal === null) throw new NeuronError('UNAUTHENTICATED');
      // Another provider's feed looks exactly like one that does not exist.
      if (principal.kind === 'provider' && principal.npi !== npi) throw new NeuronError('NOT_FOUND', { message: 'no such provider' });
      const limit = pageLimit(request.query.limit);
      const rows = await service.relationshipFeed(npi, {
        after: request.query.after,
        limit: limit + 1,
        byTheProvider: principal.kind === 'provider',
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      const next = last ? encodeCursor([last.seq]) : (request.query.after ?? null);
      return { items: page.map((row) => JSON.parse(row.body) as never), next, has_more: rows.length > limit };
    },
  );
}

/** Every route of the provider CareAgent, on the providers plugin's instance. */
export function careAgentRoutes(app: RouteApp, options: CareAgentRouteOptions, pageLimit: (limit: number | undefined) => number): void {
  const guards = careAgentGuards(options);
  registrationRoutes(app, options.service, guards);
  relationshipFeedRoute(app, options.service, pageLimit);
}
