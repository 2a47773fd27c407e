/**
 * REST routes for API keys (admin scope): list, create (the key is in the answer once), revoke.
 * The same operations are on the command line: `neuron api-key create|list|revoke`.
 */
import type { RouteApp } from '../../foundation/rest/route-app.ts';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { SCOPES } from '../../foundation/rest/principal.ts';
import { actorFor, apiKeyAuth, type RouteContext } from '../../foundation/rest/context.ts';
import { NullableTimestamp, Page, Timestamp, pageQuery, params, problems, NoQuery } from '../../foundation/rest/schemas.ts';
import { KEY_ID_PATTERN, LABEL_PATTERN } from './format.ts';
import type { ApiKeyService } from './service.ts';

const ScopeSchema = Type.Enum([...SCOPES]);

export const ApiKeySchema = Type.Object(
  {
    id: Type.String({ pattern: KEY_ID_PATTERN, description: 'the non-secret key id (also the part after nrn_ in the key)' }),
    label: Type.String(),
    scopes: Type.Array(ScopeSchema),
    status: Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('expired')]),
    created_at: Timestamp,
    expires_at: NullableTimestamp,
    revoked_at: NullableTimestamp,
    last_used_at: Type.Union([Timestamp, Type.Null()], { description: 'recorded in memory and written every api.key_last_used_flush_ms' }),
  },
  { additionalProperties: false },
);

const ApiKeyCreated = Type.Object(
  {
    ...ApiKeySchema.properties,
    key: Type.String({ description: 'the API key. Shown only now: it is stored as a digest and cannot be recovered.' }),
  },
  { additionalProperties: false },
);

/** Listing the keys (never a key or its digest). */
function apiKeyReadRoutes(app: RouteApp, deps: RouteContext, apiKeys: ApiKeyService): void {
  app.get(
    '/v1/api-keys',
    {
      config: apiKeyAuth('admin'),
      schema: {
        tags: ['api-keys'],
        operationId: 'listApiKeys',
        summary: 'List API keys',
        description: 'In creation order, revoked and expired ones included. Never shows a key or its digest.',
        querystring: pageQuery(deps.config.api, {}),
        response: { 200: Page(ApiKeySchema) },
      },
    },
    async (request) => {
      const query = request.query;
      return apiKeys.list({ after: query.after, limit: query.limit });
    },
  );
}

/** Creating a key (shown once) and revoking one. */
function apiKeyChangeRoutes(app: RouteApp, apiKeys: ApiKeyService): void {
  app.post(
    '/v1/api-keys',
    {
      config: apiKeyAuth('admin'),
      schema: {
        tags: ['api-keys'],
        operationId: 'createApiKey',
        querystring: NoQuery,
        summary: 'Create an API key',
        description: 'The answer carries the key once. `admin` implies `write` implies `read`.',
        body: Type.Object(
          {
            label: Type.String({
              minLength: 1,
              maxLength: 64,
              pattern: LABEL_PATTERN,
              description: 'who uses it, for example booking-app; appears in the audit log as api-key:<label>',
            }),
            scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 3, uniqueItems: true }),
            expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'when the key stops working; omit for no expiry' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: ApiKeyCreated },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const by = actorFor(request);
      const { key, view } = await apiKeys.create({
        label: body.label,
        scopes: body.scopes,
        expiresAt: body.expires_at ?? null,
        actor: by.actor,
        actorKeyId: by.keyId,
      });
      return reply.code(201).send({ ...view, key });
    },
  );

  app.delete(
    '/v1/api-keys/:id',
    {
      config: apiKeyAuth('admin'),
      schema: {
        tags: ['api-keys'],
        operationId: 'revokeApiKey',
        querystring: NoQuery,
        summary: 'Revoke an API key',
        description: "Effective on the key's next request, in every instance. The key stays listed as revoked.",
        params: params('id', Type.String({ pattern: KEY_ID_PATTERN })),
        response: {
          200: ApiKeySchema,
          ...problems({ 404: 'No API key with this id (NOT_FOUND)', 409: 'The key is already revoked (CONFLICT)' }),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const by = actorFor(request);
      return apiKeys.revoke(id, by.actor, by.keyId);
    },
  );
}

export function apiKeyRoutes(deps: RouteContext & { service: ApiKeyService }): FastifyPluginAsync {
  const apiKeys = deps.service;
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();

    apiKeyReadRoutes(app, deps, apiKeys);
    apiKeyChangeRoutes(app, apiKeys);
  };
}
