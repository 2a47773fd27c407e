/**
 * Provider routes.
 *
 * Roster (API keys; read for GET, admin for every change):
 *   GET    /v1/providers                      list, cursor pagination
 *   POST   /v1/providers                      create (pending unless status=active)
 *   GET    /v1/providers/:npi                 one provider
 *   PATCH  /v1/providers/:npi                 change fields
 *   POST   /v1/providers/:npi/approve         make active, issue the CareAgent credential (shown once)
 *   POST   /v1/providers/:npi/suspend         suspend, revoke the credential
 *   DELETE /v1/providers/:npi                 remove
 *
 * Provider CareAgent (the network's provider client):
 *   POST   /v1/providers/register             self-registration, unauthenticated, always pending;
 *                                             api.register_limit_per_minute per client address
 *   GET    /v1/providers/:registration_id/heartbeat     the registration id is the capability (no
 *   POST   /v1/providers/:registration_id/disconnect    header needed; a credential, if sent, must
 *                                                       match); rate-limited per client address
 *   GET    /v1/providers/:npi/relationships   pull feed of relationship notices (own NPI only;
 *                                             API keys with read scope may read any)
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { actorFor } from '../../foundation/rest/context.ts';
import type { AuditLog } from '../audit/index.ts';
import { limitKey } from '../../foundation/rest/client-address.ts';
import { LIMIT_AUDIT_INTERVAL_MS, MAX_BUCKETS, OncePerInterval, TokenBuckets, rateLimitHeaders } from '../../foundation/rest/rate-limit.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { acknowledgeThrough, providerFeed } from '../outbox/store.ts';
import { decodeCursor, encodeCursor } from '../../foundation/storage/cursor.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import { problems } from '../../foundation/rest/schemas.ts';
import {
  ApprovalResponse,
  ApproveBody,
  CreateProviderBody,
  FeedResponse,
  HeartbeatResponse,
  ListProvidersQuery,
  NpiParams,
  PageQuery,
  ProviderPage,
  ProviderView,
  RegisterBody,
  RegisterResponse,
  RegistrationParams,
  SuspendBody,
  UpdateProviderBody,
  type ProviderViewType,
} from './schemas.ts';
import type { ProviderService } from './service.ts';
import { bearerToken, isProviderCredential } from './credentials.ts';
import { registrationPrefix } from './registration.ts';
import type { Principal } from '../../foundation/rest/principal.ts';
import { getProvider, type Provider } from './store.ts';

export interface ProviderRoutesOptions {
  service: ProviderService;
  pageSize: { default: number; max: number };
  /** The organization's public key, handed to the provider CareAgent with its credential. */
  organizationPublicKey: () => string;
  /** api.register_limit_per_minute: unauthenticated self-registrations per client address. */
  registerLimitPerMinute: number;
  /** Records a client going over the registration limit (once per address and minute). */
  audit: AuditLog;
  now?: () => number;
}

export function toProviderView(provider: Provider): ProviderViewType {
  return {
    npi: provider.npi,
    name: provider.name,
    provider_types: provider.providerTypes,
    specialty: provider.specialty,
    status: provider.status,
    provider_endpoint: provider.providerEndpoint,
    provider_public_key: provider.providerPublicKey,
    notification_url: provider.notificationUrl,
    credentials: provider.credentials,
    registration_id_prefix: provider.registrationPrefix,
    agent_status: provider.agentStatus,
    credential_id: provider.credentialId,
    last_seen_at: provider.lastSeenAt,
    registry_state: provider.registryState,
    created_at: provider.createdAt,
    updated_at: provider.updatedAt,
  };
}

const TAGS = ['providers'];
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
/**
 * Every roster change needs `admin`: the roster decides where patients are sent
 * (provider_endpoint) and who may act as a provider (credentials), which `write` (relationships
 * and profiles) must not reach.
 */
const ROSTER_AUTH = { auth: { kind: 'api_key', scope: 'admin' } } as const;
const PROVIDER_AGENT_TAGS = ['provider CareAgent'];
const NO_PROVIDER = { 404: 'no provider with this NPI' };
const REFUSED_URL = {
  400: 'The request is not valid (VALIDATION_FAILED, MALFORMED_JSON), or `notification_url` names a target the outbound policy refuses (OUTBOUND_TARGET_REFUSED); `errors` names each field',
};

/** For POST actions whose body is optional: no body means `{}`. */
const optionalBody = async (request: { body: unknown }): Promise<void> => {
  if (request.body === undefined || request.body === null) request.body = {};
};

/** The service names fields plainly (the CLI shares it); over REST they are fields of the body. */
async function bodyFields<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof NeuronError && error.code === 'VALIDATION_FAILED' && error.errors) {
      const errors = error.errors.map((e) => ({ path: `body.${e.path}`, message: e.message }));
      throw new NeuronError('VALIDATION_FAILED', {
        message: `invalid request: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
        errors,
      });
    }
    if (error instanceof NeuronError && error.code === 'OUTBOUND_TARGET_REFUSED' && error.errors) {
      const errors = error.errors.map((e) => ({ path: `body.${e.path}`, message: e.message }));
      throw new NeuronError('OUTBOUND_TARGET_REFUSED', { message: errors.map((e) => `${e.path} ${e.message}`).join('; '), errors });
    }
    throw error;
  }
}

export function providerRoutes(options: ProviderRoutesOptions): FastifyPluginAsync {
  const { service } = options;
  const pageLimit = (limit: number | undefined): number => Math.min(limit ?? options.pageSize.default, options.pageSize.max);
  const now = options.now ?? Date.now;
  // Per instance and in memory, like the API's other limits (src/foundation/rest/rate-limit.ts).
  const registrations = new TokenBuckets(options.registerLimitPerMinute, MAX_BUCKETS);
  const registrationAudits = new OncePerInterval(LIMIT_AUDIT_INTERVAL_MS, MAX_BUCKETS);

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
  const liveness = new TokenBuckets(options.registerLimitPerMinute, MAX_BUCKETS);

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

  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    // ---- roster (API keys) ----

    app.get(
      '/v1/providers',
      {
        config: { auth: { kind: 'api_key', scope: 'read' } },
        schema: {
          tags: TAGS,
          operationId: 'listProviders',
          summary: 'List the provider roster',
          querystring: ListProvidersQuery,
          response: { 200: ProviderPage },
        },
      },
      async (request) => {
        const page = await service.list({
          after: request.query.after,
          limit: pageLimit(request.query.limit),
          status: request.query.status,
        });
        return { items: page.items.map(toProviderView), next: page.next };
      },
    );

    app.post(
      '/v1/providers',
      {
        config: ROSTER_AUTH,
        schema: {
          tags: TAGS,
          operationId: 'createProvider',
          summary: 'Add a provider to the roster',
          body: CreateProviderBody,
          response: { 201: ProviderView, ...problems({ ...REFUSED_URL, 409: 'a provider with this NPI is already on the roster' }) },
        },
      },
      async (request, reply) => {
        const provider = await bodyFields(service.create(request.body, actorFor(request)));
        return reply.code(201).send(toProviderView(provider));
      },
    );

    app.get(
      '/v1/providers/:npi',
      {
        config: { auth: { kind: 'api_key', scope: 'read' } },
        schema: {
          tags: TAGS,
          operationId: 'getProvider',
          summary: 'One provider',
          params: NpiParams,
          response: { 200: ProviderView, ...problems(NO_PROVIDER) },
        },
      },
      async (request) => toProviderView(await service.get(request.params.npi)),
    );

    app.patch(
      '/v1/providers/:npi',
      {
        config: ROSTER_AUTH,
        schema: {
          tags: TAGS,
          operationId: 'updateProvider',
          summary: 'Change a provider (null clears an optional field)',
          params: NpiParams,
          body: UpdateProviderBody,
          response: { 200: ProviderView, ...problems({ ...REFUSED_URL, ...NO_PROVIDER }) },
        },
      },
      async (request) => toProviderView(await bodyFields(service.update(request.params.npi, request.body, actorFor(request)))),
    );

    app.post(
      '/v1/providers/:npi/approve',
      {
        config: ROSTER_AUTH,
        preValidation: optionalBody,
        schema: {
          tags: TAGS,
          operationId: 'approveProvider',
          summary: 'Make a provider active and issue its CareAgent credential (shown only in this answer)',
          params: NpiParams,
          body: ApproveBody,
          response: {
            200: ApprovalResponse,
            ...problems({ ...NO_PROVIDER, 409: 'no provider_endpoint yet, or already active with a credential (ask for rotate)' }),
          },
        },
      },
      async (request, reply) => {
        const approval = await service.approve(request.params.npi, actorFor(request), { rotate: request.body?.rotate });
        void reply.header('Cache-Control', 'no-store');
        return {
          provider: toProviderView(approval.provider),
          credential: approval.credential,
          credential_id: approval.credentialId,
          registration_id: approval.registrationId,
          rotated: approval.rotated,
          neuron_public_key: options.organizationPublicKey(),
        };
      },
    );

    app.post(
      '/v1/providers/:npi/suspend',
      {
        config: ROSTER_AUTH,
        preValidation: optionalBody,
        schema: {
          tags: TAGS,
          operationId: 'suspendProvider',
          summary: 'Suspend a provider: handshakes to it are refused and its credential is revoked',
          params: NpiParams,
          body: SuspendBody,
          response: { 200: ProviderView, ...problems(NO_PROVIDER) },
        },
      },
      async (request) => toProviderView(await service.suspend(request.params.npi, actorFor(request), request.body?.reason)),
    );

    app.delete(
      '/v1/providers/:npi',
      {
        config: ROSTER_AUTH,
        schema: {
          tags: TAGS,
          operationId: 'removeProvider',
          summary: 'Remove a provider from the roster (its relationships are kept)',
          params: NpiParams,
          response: { 204: Type.Null({ description: 'removed' }), ...problems(NO_PROVIDER) },
        },
      },
      async (request, reply) => {
        await service.remove(request.params.npi, actorFor(request));
        return reply.code(204).send(null);
      },
    );

    // ---- provider CareAgent ----

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
        if (principal.kind !== 'provider' && (await getProvider(service.db, npi)) === null)
          throw new NeuronError('NOT_FOUND', { message: 'no such provider' });
        const afterSeq = request.query.after === undefined ? 0 : Number(decodeCursor(request.query.after, ['number'])[0]);
        if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new NeuronError('INVALID_CURSOR');
        const limit = pageLimit(request.query.limit);
        if (principal.kind === 'provider' && afterSeq > 0) await acknowledgeThrough(service.db, npi, afterSeq, isoNow());
        const rows = await providerFeed(service.db, npi, afterSeq, limit + 1);
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        const next = last ? encodeCursor([last.seq]) : (request.query.after ?? null);
        return { items: page.map((row) => JSON.parse(row.body) as never), next, has_more: rows.length > limit };
      },
    );
  };
}
