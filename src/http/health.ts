/**
 * Liveness and readiness, unauthenticated so load balancers and process supervisors can use them.
 * They reveal nothing but up/down and the names of failing checks.
 */
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import { NoQuery } from '../foundation/rest/schemas.ts';

/** Names of the checks that fail right now; empty means ready. */
export type ReadinessCheck = () => Promise<string[]>;

const HealthResponse = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Optional(Type.Array(Type.String())),
});

export function healthRoutes(readiness: ReadinessCheck): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/health/live',
      {
        schema: {
          tags: ['operations'],
          operationId: 'getLiveness',
          summary: 'The process is up and serving HTTP',
          description: 'For a liveness probe: 200 while the process answers HTTP at all. Public; no credential.',
          querystring: NoQuery,
          response: { 200: HealthResponse },
        },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/health/ready',
      {
        schema: {
          tags: ['operations'],
          operationId: 'getReadiness',
          summary: 'The Neuron can serve patients: database reachable and taking writes, migrations current, not shutting down',
          description:
            'For a readiness probe or load balancer: 200 when the Neuron can serve, 503 with the failing `checks` when it cannot. Public; no credential.',
          querystring: NoQuery,
          response: { 200: HealthResponse, 503: HealthResponse },
        },
      },
      async (_request, reply) => {
        const failing = await readiness();
        if (failing.length > 0) return reply.code(503).send({ status: 'unavailable' as const, checks: failing });
        return { status: 'ok' as const };
      },
    );
  };
}
