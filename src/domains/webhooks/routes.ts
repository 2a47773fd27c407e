/**
 * REST routes for webhook subscriptions (admin scope). The payloads and their signature are in the
 * OpenAPI document's `webhooks` section and in docs/api.md.
 */
import type { RouteApp } from '../../foundation/rest/route-app.ts';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type, { type Static } from 'typebox';
import { WEBHOOK_EVENT_TYPES } from './event-types.ts';
import { actorFor, apiKeyAuth, type RouteContext } from '../../foundation/rest/context.ts';
import { Page, Timestamp, pageQuery, params, problems, text, NoQuery } from '../../foundation/rest/schemas.ts';
import type { WebhookService } from './service.ts';
import type { WebhookSubscription } from './store.ts';

const EventType = Type.Enum([...WEBHOOK_EVENT_TYPES]);

export const WebhookSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    url: Type.String(),
    events: Type.Array(EventType),
    label: Type.String(),
    created_by: Type.String(),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);

const WebhookCreated = Type.Object(
  {
    ...WebhookSchema.properties,
    secret: Type.String({ description: 'HMAC-SHA256 key for the Neuron-Signature header. Shown only now: store it.' }),
  },
  { additionalProperties: false },
);

function webhookView(subscription: WebhookSubscription): Static<typeof WebhookSchema> {
  return {
    id: subscription.id,
    url: subscription.url,
    events: subscription.events,
    label: subscription.label,
    created_by: subscription.createdBy,
    created_at: subscription.createdAt,
  };
}

const IdParams = params('id', Type.String({ format: 'uuid' }));
const notFound = problems({ 404: 'No webhook subscription with this id (NOT_FOUND)' });

/** Subscribing: the answer carries the signing secret once. */
function subscribeRoute(app: RouteApp, service: WebhookService): void {
  app.post(
    '/v1/webhooks',
    {
      config: apiKeyAuth('admin'),
      schema: {
        tags: ['webhooks'],
        operationId: 'createWebhook',
        querystring: NoQuery,
        summary: 'Subscribe to events',
        description:
          'Each event is POSTed to `url` as JSON, signed with `Neuron-Signature: hmac-sha256=<hex>` (HMAC-SHA256 of the raw body keyed with `secret`), retried with backoff until a 2xx answer. The URL must meet the outbound policy (`outbound.*`): https, except plain http to loopback or private addresses where allowed; never a link-local, multicast or unspecified address; loopback only when the operator allows it. A literal address the policy refuses is `400 OUTBOUND_TARGET_REFUSED`; a host name is checked against the addresses it resolves to at every delivery.',
        body: Type.Object(
          {
            url: Type.String({
              minLength: 1,
              maxLength: 2048,
              pattern: '^https?://',
              description: 'http(s) URL that receives the POSTs',
            }),
            events: Type.Array(EventType, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true }),
            label: text(100, 'a name for people, for example booking-app'),
          },
          { additionalProperties: false },
        ),
        response: {
          201: WebhookCreated,
          ...problems({
            400: 'The request is not valid (VALIDATION_FAILED, MALFORMED_JSON), or `url` is refused by the outbound policy (OUTBOUND_TARGET_REFUSED); `errors` names each field',
          }),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const { subscription, secret } = await service.create(body, actorFor(request));
      return reply.code(201).send({ ...webhookView(subscription), secret });
    },
  );
}

/** Reading the subscriptions and removing one. */
function subscriptionRoutes(app: RouteApp, deps: RouteContext, service: WebhookService): void {
  app.get(
    '/v1/webhooks',
    {
      config: apiKeyAuth('admin'),
      schema: {
        tags: ['webhooks'],
        operationId: 'listWebhooks',
        summary: 'List webhook subscriptions',
        querystring: pageQuery(deps.config.api, {}),
        response: { 200: Page(WebhookSchema) },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await service.list({ after: query.after, limit: query.limit });
      return { items: page.items.map(webhookView), next: page.next };
    },
  );

  app.get(
    '/v1/webhooks/:id',
    {
      config: apiKeyAuth('admin'),
      schema: {
        tags: ['webhooks'],
        operationId: 'getWebhook',
        querystring: NoQuery,
        summary: 'Get one webhook subscription',
        params: IdParams,
        response: { 200: WebhookSchema, ...notFound },
      },
    },
    async (request) => {
      const { id } = request.params;
      return webhookView(await service.get(id));
    },
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      config: apiKeyAuth('admin'),
      schema: {
        tags: ['webhooks'],
        operationId: 'deleteWebhook',
        querystring: NoQuery,
        summary: 'Delete a webhook subscription',
        description: 'Deliveries stop at once; events still queued for it are dropped.',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...notFound },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await service.delete(id, actorFor(request));
      return reply.code(204).send(null);
    },
  );
}

export function webhookRoutes(deps: RouteContext & { service: WebhookService }): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    const { service } = deps;

    subscribeRoute(app, service);
    subscriptionRoutes(app, deps, service);
  };
}
