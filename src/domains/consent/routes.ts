/**
 *   POST /v1/consent/verify   provider credential: may the calling provider perform this action
 *                             for this patient agent? 200 allowed, 403 CONSENT_DENIED, 410
 *                             RELATIONSHIP_TERMINATED.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { problems } from '../../foundation/rest/schemas.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { ConsentVerifyBody, ConsentVerifyResponse } from './schemas.ts';
import type { ConsentService } from './service.ts';

export function consentRoutes(options: { service: ConsentService }): FastifyPluginAsync {
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    app.post(
      '/v1/consent/verify',
      {
        config: { auth: { kind: 'provider' } },
        schema: {
          tags: ['provider CareAgent'],
          operationId: 'verifyConsent',
          summary: 'Does the calling provider hold an active relationship with this patient agent that consents to the action?',
          body: ConsentVerifyBody,
          response: {
            200: ConsentVerifyResponse,
            ...problems({
              403: 'CONSENT_DENIED: no active relationship, or the action is not consented',
              410: 'RELATIONSHIP_TERMINATED: the latest relationship was terminated',
            }),
          },
        },
      },
      async (request) => {
        const principal = request.principal;
        if (principal?.kind !== 'provider') throw new NeuronError('UNAUTHENTICATED');
        const grant = await options.service.verify({
          providerNpi: principal.npi,
          patientAgentId: request.body.patient_agent_id,
          action: request.body.action,
          providerPublicKey: request.body.provider_public_key,
        });
        return { allowed: true as const, relationship_id: grant.relationshipId, scope: grant.scope };
      },
    );
  };
}
