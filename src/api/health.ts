/**
 * Liveness and readiness, unauthenticated so load balancers and process supervisors can use them.
 * They reveal nothing but up/down and the names of failing checks.
 */
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';

export interface ReadinessCheck {
  /** Names of the checks that fail right now; empty means ready. */
  (): Promise<string[]>;
}

const HealthResponse = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Optional(Type.Array(Type.String())),
});

export function healthRoutes(readiness: ReadinessCheck): FastifyPluginAsync {
  return async (app) => {
    app.get('/health/live', {
      schema: { tags: ['operations'], summary: 'The process is up and serving HTTP', response: { 200: HealthResponse } },
    }, async () => ({ status: 'ok' as const }));

    app.get('/health/ready', {
      schema: {
        tags: ['operations'],
        summary: 'The Neuron can serve patients: database reachable and taking writes, migrations current, not shutting down',
        response: { 200: HealthResponse, 503: HealthResponse },
      },
    }, async (_request, reply) => {
      const failing = await readiness();
      if (failing.length > 0) return reply.code(503).send({ status: 'unavailable' as const, checks: failing });
      return { status: 'ok' as const };
    });
  };
}
