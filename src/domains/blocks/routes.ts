/**
 * REST routes for blocks: listed with `read`, added and removed with `write` (the front desk blocks
 * a patient agent; docs/api.md). Blocking an agent id that never connected is allowed: it
 * is refused from its first handshake on.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type, { type Static } from 'typebox';
import { actorFor, apiKeyAuth, type RouteContext } from '../../foundation/rest/context.ts';
import { Page, PatientAgentId, Timestamp, pageQuery, params, problems, text, NoQuery } from '../../foundation/rest/schemas.ts';
import type { BlockService } from './service.ts';
import type { Block } from './store.ts';

export const BlockSchema = Type.Object(
  {
    patient_agent_id: Type.String(),
    reason: Type.Union([Type.String(), Type.Null()]),
    blocked_by: Type.String({ description: 'audit actor that made the block, for example api-key:front-desk' }),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);

const BlockCreated = Type.Object(
  {
    ...BlockSchema.properties,
    suspended_relationship_ids: Type.Array(Type.String(), { description: 'active relationships of this agent, now suspended' }),
    blocked_public_keys: Type.Array(Type.String(), {
      description: 'the public keys this agent presented here; handshakes with any of them are refused too, under any agent id',
    }),
  },
  { additionalProperties: false },
);

function blockView(block: Block): Static<typeof BlockSchema> {
  return { patient_agent_id: block.patientAgentId, reason: block.reason, blocked_by: block.blockedBy, created_at: block.createdAt };
}

export function blockRoutes(deps: RouteContext & { service: BlockService }): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    const { service } = deps;

    app.get(
      '/v1/blocks',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['blocks'],
          operationId: 'listBlocks',
          summary: 'List blocked patient agents',
          querystring: pageQuery(deps.config.api, {}),
          response: { 200: Page(BlockSchema) },
        },
      },
      async (request) => {
        const query = request.query;
        const page = await service.list({ after: query.after, limit: query.limit });
        return { items: page.items.map(blockView), next: page.next };
      },
    );

    app.post(
      '/v1/blocks',
      {
        config: apiKeyAuth('write'),
        schema: {
          tags: ['blocks'],
          operationId: 'blockPatient',
          querystring: NoQuery,
          summary: 'Block a patient agent',
          description:
            "Refuses the agent's handshakes from now on, and those of any agent id presenting a public key this agent presented here, suspends its active relationships in the same transaction and publishes the `patient.blocked` webhook.",
          body: Type.Object(
            { patient_agent_id: PatientAgentId, reason: text(500, 'why; kept in the audit log and sent in the webhook') },
            { additionalProperties: false },
          ),
          response: { 201: BlockCreated, ...problems({ 409: 'The agent is already blocked (CONFLICT)' }) },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const result = await service.block(body.patient_agent_id, body.reason, actorFor(request));
        if (result.webhooks > 0) deps.nudgeOutbox();
        return reply.code(201).send({
          ...blockView(result.block),
          suspended_relationship_ids: result.suspendedRelationshipIds,
          blocked_public_keys: result.blockedPublicKeys,
        });
      },
    );

    app.delete(
      '/v1/blocks/:patient_agent_id',
      {
        config: apiKeyAuth('write'),
        schema: {
          tags: ['blocks'],
          operationId: 'unblockPatient',
          querystring: NoQuery,
          summary: 'Remove a block',
          description:
            'New handshakes are accepted again (by agent id and by the keys blocked with it). Relationships suspended by the block stay suspended until resumed.',
          params: params('patient_agent_id', PatientAgentId),
          response: { 204: Type.Null({ description: 'Removed' }), ...problems({ 404: 'The agent is not blocked (NOT_FOUND)' }) },
        },
      },
      async (request, reply) => {
        const { patient_agent_id: id } = request.params;
        await service.unblock(id, actorFor(request));
        return reply.code(204).send(null);
      },
    );
  };
}
