/**
 * Dead letters, for operators (API keys with the admin scope):
 *
 *   GET  /v1/outbox/dead               notices that used up their attempts, oldest first
 *   POST /v1/outbox/:event_id/retry    put a dead (or delivered) notice back in the queue, due now
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { actorOf } from '../../foundation/rest/principal.ts';
import { problems } from '../../foundation/rest/schemas.ts';
import { toOutboxView, type OutboxService } from './service.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const OutboxNoticeView = Type.Object(
  {
    event_id: Type.String(),
    kind: Type.Enum(['provider.relationship', 'webhook']),
    event_type: Type.String(),
    target: Type.String({ description: 'provider NPI, or webhook subscription id' }),
    status: Type.Enum(['pending', 'delivered', 'dead']),
    attempts: Type.Integer(),
    next_attempt_at: Type.String(),
    last_error: Nullable(Type.String()),
    created_at: Type.String(),
    delivered_at: Nullable(Type.String()),
  },
  { additionalProperties: false },
);

export interface OutboxRoutesOptions {
  service: OutboxService;
  pageSize: { default: number; max: number };
  /** Wakes the delivery worker after a requeue. */
  nudge: () => void;
}

export function outboxRoutes(options: OutboxRoutesOptions): FastifyPluginAsync {
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/outbox/dead',
      {
        config: { auth: { kind: 'api_key', scope: 'admin' } },
        schema: {
          tags: ['operations'],
          operationId: 'listDeadLetters',
          summary: 'Notices whose delivery gave up after the last attempt (dead letters)',
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: options.pageSize.max })),
              after: Type.Optional(Type.String({ maxLength: 512 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ items: Type.Array(OutboxNoticeView), next: Nullable(Type.String()) }, { additionalProperties: false }),
          },
        },
      },
      async (request) => {
        const page = await options.service.list({
          status: 'dead',
          after: request.query.after,
          limit: request.query.limit ?? options.pageSize.default,
        });
        return { items: page.items.map(toOutboxView), next: page.next };
      },
    );

    app.post(
      '/v1/outbox/:event_id/retry',
      {
        config: { auth: { kind: 'api_key', scope: 'admin' } },
        schema: {
          tags: ['operations'],
          operationId: 'retryOutboxNotice',
          summary: 'Deliver a dead (or already delivered) notice again, with a fresh attempt budget',
          params: Type.Object({ event_id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
          response: { 200: OutboxNoticeView, ...problems({ 404: 'no notice with this event id', 409: 'the notice is still pending' }) },
        },
      },
      async (request) => {
        const row = await options.service.requeue(request.params.event_id, actorOf(request.principal));
        options.nudge();
        return toOutboxView(row);
      },
    );
  };
}
