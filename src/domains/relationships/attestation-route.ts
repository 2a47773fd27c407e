/**
 * `GET /v1/relationships/{id}/attestation` (read scope): the Neuron's signed attestation that an
 * active relationship exists, for the console to show and copy (and for any client). Attestations
 * are not stored; this one is signed now, from the relationship as recorded, in exactly the form
 * the handshake hands the patient (docs/protocol.md), so anyone holding the organization's public
 * key can verify it without trusting the database's keeper. Its `issued_at` is the time of this
 * request, not of the handshake.
 *
 * With it comes the relationship's audit receipt (docs/protocol.md "Audit receipts"), produced
 * now: its `handshake.completed` entry, the latest signed tree head and the entry's inclusion
 * proof, so the holder can show the organization cannot delete that entry without detection.
 * `null`, with `receipt_absent_reason`, for a relationship the audit log does not record.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { apiKeyAuth } from '../../foundation/rest/context.ts';
import { NoQuery, params, problems, Timestamp } from '../../foundation/rest/schemas.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { OrganizationKey } from '../../foundation/organization/keys.ts';
import { ReceiptSchema, signAttestation } from 'neuron-careagent-client/protocol';
import type { RelationshipReceipt } from '../audit/index.ts';
import type { ProviderService } from '../providers/index.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import type { RelationshipService } from './service.ts';

const AttestationAnswer = Type.Object(
  {
    attestation: Type.Object(
      {
        payload: Type.String({ description: 'base64url of the attestation JSON (docs/protocol.md)' }),
        signature: Type.String({ description: 'Ed25519 signature over the payload bytes, base64url' }),
      },
      { additionalProperties: false },
    ),
    issued_at: Timestamp,
    neuron_public_key: Type.String({ description: 'the organization key that signed it (also in GET /v1/organization)' }),
    receipt: Type.Union(
      [
        Type.Object(ReceiptSchema.properties, {
          description:
            'the audit receipt of the handshake.completed entry that established the relationship, under the latest signed tree head: the entry, its leaf index and inclusion proof, and the head (docs/protocol.md "Audit receipts"); verify it with verifyAttestationWithReceipt({...attestation, receipt}, organization key)',
          additionalProperties: false,
        }),
        Type.Null(),
      ],
      { description: 'null when the audit log holds no receipt for this relationship (see receipt_absent_reason)' },
    ),
    receipt_absent_reason: Type.Union([Type.Enum(['NO_AUDIT_ENTRY', 'NOT_YET_SEALED']), Type.Null()], {
      description:
        'why receipt is null: NO_AUDIT_ENTRY, no handshake.completed entry records the relationship (recorded before the audit log, or not by a handshake); NOT_YET_SEALED, no signed tree head covers the entry yet (the next audited change seals it). null when receipt is given',
    }),
  },
  { additionalProperties: false },
);

export interface AttestationRouteOptions {
  relationships: RelationshipService;
  /** The roster's key of the relationship's provider (null when it has none, or left the roster). */
  providers: Pick<ProviderService, 'registeredPublicKey'>;
  /** The organization's key of the moment (it signs the attestation). */
  key: () => OrganizationKey;
  /** The audit log's receipt of the relationship's handshake.completed entry (the audit domain's relationshipReceipt). */
  receipt: (relationshipId: string) => Promise<RelationshipReceipt>;
  organizationNpi: string;
  now?: () => number;
}

export function relationshipAttestationRoutes(options: AttestationRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/relationships/:id/attestation',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['relationships'],
          operationId: 'getRelationshipAttestation',
          querystring: NoQuery,
          summary: 'A signed attestation of an active relationship',
          description:
            "Signed now, in the same form as the attestation of the handshake, from the relationship as recorded; verify it with the organization's public key. With it, the audit receipt of the relationship's handshake.completed entry under the latest signed tree head, when the audit log records one. Only for active relationships.",
          params: params('id', Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'relationship id' })),
          response: {
            200: AttestationAnswer,
            ...problems({
              404: 'No relationship with this id (NOT_FOUND)',
              409: 'The relationship is suspended (CONFLICT)',
              410: 'The relationship was terminated (RELATIONSHIP_TERMINATED)',
            }),
          },
        },
      },
      async (request) => {
        const relationship = await options.relationships.get(request.params.id);
        if (relationship.status === 'terminated')
          throw new NeuronError('RELATIONSHIP_TERMINATED', { message: 'the relationship was terminated; there is nothing to attest' });
        if (relationship.status !== 'active')
          throw new NeuronError('CONFLICT', {
            message: `the relationship is ${relationship.status}; only active relationships are attested`,
          });
        const providerPublicKey = await options.providers.registeredPublicKey(relationship.providerNpi);
        const key = options.key();
        const issuedAt = isoNow(options.now?.());
        const attestation = signAttestation(
          {
            relationship_id: relationship.id,
            patient_agent_id: relationship.patientAgentId,
            patient_public_key: relationship.patientPublicKey,
            provider_npi: relationship.providerNpi,
            provider_public_key: providerPublicKey,
            consented_actions: relationship.consentedActions,
            organization_npi: options.organizationNpi,
            issued_at: issuedAt,
            neuron_public_key: key.publicKey,
          },
          key.privateKey,
        );
        const { receipt, absence } = await options.receipt(relationship.id);
        return { attestation, issued_at: issuedAt, neuron_public_key: key.publicKey, receipt, receipt_absent_reason: absence };
      },
    );
  };
}
