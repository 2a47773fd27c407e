/**
 * REST routes for the audit log: page through entries, and verify the whole chain and its signed
 * checkpoints (the same check as `neuron audit verify`).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { decodeCursor, pageOf } from '../storage/cursor.ts';
import { apiKeyAuth, type ApiDeps } from '../api/context.ts';
import { Page, Timestamp, pageQuery, NoQuery } from '../api/schemas.ts';

export const AuditEventSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    occurred_at: Timestamp,
    event_type: Type.String(),
    actor: Type.String({ description: 'system, cli, api-key:<label>, patient:<agent id>, provider:<npi>, …' }),
    details: Type.Object({}, { additionalProperties: true }),
    prev_hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 over the canonical JSON of the entry and prev_hash' }),
  },
  { additionalProperties: false },
);

const VerifyResultSchema = Type.Object(
  {
    ok: Type.Boolean(),
    entries: Type.Integer({ minimum: 0 }),
    checkpoints: Type.Integer({ minimum: 0 }),
    first_bad_seq: Type.Union([Type.Integer(), Type.Null()], { description: 'the first entry found missing, altered or out of place' }),
    problem: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export function auditRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();

    app.get('/v1/audit/events', {
      config: apiKeyAuth('read'),
      schema: {
        tags: ['audit'],
        operationId: 'listAuditEvents',
        summary: 'List audit entries',
        description: 'Oldest first. Every change made through the API is here with actor `api-key:<label>`.',
        querystring: pageQuery(deps.config.api, {
          event_type: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9_.]+$', description: 'for example relationship.terminated' })),
        }),
        response: { 200: Page(AuditEventSchema) },
      },
    }, async (request) => {
      const query = request.query;
      const after = query.after === undefined ? undefined : (decodeCursor(query.after, ['number'])[0] as number);
      const rows = await deps.audit.list({ after, limit: query.limit + 1, eventType: query.event_type });
      return pageOf(rows, query.limit, (row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }), (last) => [last.seq]);
    });

    app.post('/v1/audit/verify', {
      config: apiKeyAuth('read'),
      schema: {
        tags: ['audit'],
        operationId: 'verifyAuditLog',
        querystring: NoQuery,
        summary: 'Verify the audit chain',
        description: 'Checks every hash link and every signed checkpoint, like `neuron audit verify`. Takes no body. Reads the whole log: expect it to take a while on long logs.',
        response: { 200: VerifyResultSchema },
      },
    }, async () => {
      const result = await deps.audit.verify();
      return { ok: result.ok, entries: result.entries, checkpoints: result.checkpoints, first_bad_seq: result.firstBadSeq, problem: result.problem };
    });
  };
}
