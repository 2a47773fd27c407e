/**
 *   GET /.well-known/agent-card.json   public: what this organization offers the CareAgent network
 *                                      (the card also published to the registry), 404 when the
 *                                      configuration lists no capability. Served with an ETag;
 *                                      If-None-Match answers 304.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { problems } from '../../foundation/rest/schemas.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { ServedAgentCard } from './agent-card.ts';

export const AGENT_CARD_PATH = '/.well-known/agent-card.json';

const Text = Type.String();
const AgentCardSchema = Type.Object(
  {
    id: Text,
    name: Text,
    description: Text,
    version: Text,
    url: Type.String({ description: 'the handshake URL, where a patient CareAgent starts a relationship' }),
    capabilities: Type.Array(Type.Object({ name: Text, description: Text })),
    provider: Type.Object({ organization: Text, url: Text }),
    careagent: Type.Object({
      practice_npi: Text,
      organization: Text,
      specialty: Text,
      provider_type: Text,
      location: Type.Object({ address: Text, city: Text, state: Text, zip: Text, country: Text }),
      consent_required: Type.Boolean(),
      classification: Text,
    }),
  },
  { description: "The registry's agent card format (A2A style)" },
);

export function agentCardRoutes(options: { card: () => Promise<ServedAgentCard | null> }): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      AGENT_CARD_PATH,
      {
        config: { auth: { kind: 'none' } },
        schema: {
          tags: ['organization'],
          operationId: 'getAgentCard',
          summary: 'What this organization offers the CareAgent network (its agent card)',
          description:
            'Built from the `services` configuration section and the active roster; the same card is published to the registry. Public.',
          security: [],
          response: {
            200: AgentCardSchema,
            304: Type.Null({ description: 'unchanged since the ETag given in If-None-Match' }),
            ...problems({ 404: 'NOT_FOUND: the organization lists no capability' }),
          },
        },
      },
      async (request, reply) => {
        const served = await options.card();
        if (served === null)
          throw new NeuronError('NOT_FOUND', { message: 'This organization publishes no agent card (no capability is configured)' });
        reply.header('etag', served.etag).header('cache-control', 'public, max-age=60');
        if (request.headers['if-none-match'] === served.etag) return reply.code(304).send(null);
        // Serialized once per refresh (presence.ts), not per request: a JSON string is sent as it is.
        return reply.type('application/json; charset=utf-8').send(served.json as unknown as ServedAgentCard['card']);
      },
    );
  };
}
