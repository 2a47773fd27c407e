/**
 * `GET /v1/status` (read scope) and `GET /metrics` (Prometheus text; admin scope on the API
 * port). With api.metrics_port set, ./metrics-listener.ts also serves /metrics without
 * authentication on 127.0.0.1 only, for a local scraper.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import Type from 'typebox';
import { apiKeyAuth } from '../../foundation/rest/context.ts';
import { NullableTimestamp, NoQuery } from '../../foundation/rest/schemas.ts';
import type { StatusService } from './service.ts';

const nullableCount = (description: string) => Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description });

export const StatusSchema = Type.Object(
  {
    version: Type.String(),
    started_at: NullableTimestamp,
    uptime_seconds: Type.Integer({ minimum: 0 }),
    handshakes: Type.Object(
      {
        active: nullableCount('handshakes holding a slot now, in this instance (null when unknown)'),
        queued: nullableCount('handshakes waiting for a slot, in this instance'),
      },
      { additionalProperties: false },
    ),
    registry: Type.Object(
      {
        state: Type.String({ description: 'unregistered, registering, registered, invalid, disabled (or unknown)' }),
        registered: Type.Boolean(),
        last_heartbeat_at: NullableTimestamp,
      },
      { additionalProperties: false },
    ),
    outbox: Type.Object(
      {
        pending: Type.Integer({ minimum: 0 }),
        delivered: Type.Integer({ minimum: 0 }),
        dead: Type.Integer({ minimum: 0 }),
        oldest_pending_at: NullableTimestamp,
      },
      { additionalProperties: false, description: 'notices and webhook deliveries by state (all instances)' },
    ),
  },
  { additionalProperties: false },
);

export interface StatusRouteOptions {
  service: StatusService;
  /** The Prometheus registry `/metrics` exposes. */
  metrics: Registry;
  now?: () => number;
}

export function statusRoutes(options: StatusRouteOptions): FastifyPluginAsync {
  const { service, metrics } = options;
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/status',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['status'],
          operationId: 'getStatus',
          querystring: NoQuery,
          summary: 'What the Neuron is doing',
          description: 'Version, uptime, handshake load of the instance that answers, registry presence and the outbox backlog.',
          response: { 200: StatusSchema },
        },
      },
      async () => service.report(options.now?.()),
    );

    app.get(
      '/metrics',
      {
        config: apiKeyAuth('admin'),
        schema: {
          tags: ['operations'],
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          description:
            'Prometheus text exposition format. For a scraper without a key, set api.metrics_port: the same metrics are then served unauthenticated on 127.0.0.1 only.',
          response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: Type.String() } } } },
        },
      },
      async (_request, reply) => {
        const body = await metrics.metrics();
        return reply.type(metrics.contentType).send(body);
      },
    );
  };
}
