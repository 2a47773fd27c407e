/**
 * `GET /v1/organization`: who this Neuron is. The public key verifies the Neuron's signatures
 * (attestations, provider notices, audit checkpoints).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { RegistrySummary } from './service.ts';
import { apiKeyAuth } from '../../foundation/rest/context.ts';
import type { NeuronConfig } from '../../foundation/config/index.ts';
import { NullableTimestamp, NoQuery } from '../../foundation/rest/schemas.ts';

export interface OrganizationSources {
  handshakeUrl: () => string;
  publicKey: () => string;
  registry: () => RegistrySummary;
}

export const OrganizationSchema = Type.Object(
  {
    name: Type.String(),
    npi: Type.String({ pattern: '^[0-9]{10}$' }),
    type: Type.String(),
    handshake_url: Type.String({ description: 'the ws(s):// URL patient CareAgents connect to' }),
    public_key: Type.String({ description: "the organization's Ed25519 public key, base64url (43 characters)" }),
    registry: Type.Object(
      {
        state: Type.String({ description: 'unregistered, registering, registered, invalid, disabled (or unknown)' }),
        registered: Type.Boolean(),
        last_heartbeat_at: NullableTimestamp,
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export function organizationRoutes(organization: NeuronConfig['organization'], sources: OrganizationSources): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/organization',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['organization'],
          operationId: 'getOrganization',
          querystring: NoQuery,
          summary: 'The organization this Neuron serves',
          response: { 200: OrganizationSchema },
        },
      },
      async () => {
        const registry = sources.registry();
        return {
          name: organization.name,
          npi: organization.npi,
          type: organization.type,
          handshake_url: sources.handshakeUrl(),
          public_key: sources.publicKey(),
          registry: { state: registry.state, registered: registry.registered, last_heartbeat_at: registry.lastHeartbeatAt },
        };
      },
    );
  };
}
