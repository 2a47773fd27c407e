/**
 * REST routes for relationships, and the organization-side status changes they make:
 *
 *   active --suspend--> suspended --resume--> active
 *   active | suspended --terminate--> terminated (final: any further change is 410)
 *
 * Suspending puts a relationship on hold (the patient's handshakes are refused until it is
 * resumed); terminating ends it for good (a later handshake creates a new relationship). Every
 * change is audited with the caller as actor in the same transaction; terminating also publishes
 * the `relationship.terminated` webhook in that transaction.
 *
 * (The handshake's own rules for establishing relationships are in ./service.ts.)
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type, { type Static } from 'typebox';
import { NeuronError } from '../errors/index.ts';
import { isUniqueViolation, isoNow, type Db } from '../storage/index.ts';
import { publishWebhookEvent } from '../outbox/events.ts';
import { isBlocked } from '../blocks/store.ts';
import { actorFor, apiKeyAuth, auditedChange, type Actor, type ApiDeps } from '../api/context.ts';
import { Npi, Page, PatientAgentId, ReasonBody, Timestamp, pageQuery, params, problems, NoQuery } from '../api/schemas.ts';
import { getRelationship, listRelationships, setStatus, type Relationship, type RelationshipStatus } from './store.ts';

const STATUSES = ['active', 'suspended', 'terminated'] as const;

export const RelationshipSchema = Type.Object(
  {
    id: Type.String(),
    patient_agent_id: Type.String(),
    provider_npi: Type.String(),
    status: Type.Enum([...STATUSES]),
    status_reason: Type.Union([Type.String(), Type.Null()], { description: 'why it was last suspended, resumed or terminated' }),
    consented_actions: Type.Array(Type.String(), { description: 'exactly as the patient consented in the token' }),
    consent_expires_at: Timestamp,
    established_at: Timestamp,
    last_handshake_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);

export function relationshipView(r: Relationship): Static<typeof RelationshipSchema> {
  return {
    id: r.id,
    patient_agent_id: r.patientAgentId,
    provider_npi: r.providerNpi,
    status: r.status,
    status_reason: r.statusReason,
    consented_actions: r.consentedActions,
    consent_expires_at: r.consentExpiresAt,
    established_at: r.establishedAt,
    last_handshake_at: r.lastHandshakeAt,
    updated_at: r.updatedAt,
  };
}

type Action = 'suspend' | 'resume' | 'terminate';

const TRANSITIONS: Record<Action, { from: RelationshipStatus[]; to: RelationshipStatus; audit: string }> = {
  suspend: { from: ['active'], to: 'suspended', audit: 'relationship.suspended' },
  resume: { from: ['suspended'], to: 'active', audit: 'relationship.resumed' },
  terminate: { from: ['active', 'suspended'], to: 'terminated', audit: 'relationship.terminated' },
};

/** Applies one organization-side change; throws NOT_FOUND, RELATIONSHIP_TERMINATED or CONFLICT. */
export async function changeRelationshipStatus(
  deps: Pick<ApiDeps, 'storage' | 'audit'>,
  id: string,
  action: Action,
  reason: string,
  by: Actor,
  now: number = Date.now(),
): Promise<{ relationship: Relationship; webhooks: number }> {
  const transition = TRANSITIONS[action];
  const at = isoNow(now);
  return auditedChange(deps, async (trx: Db) => {
    const current = await getRelationship(trx, id);
    if (current === null) throw new NeuronError('NOT_FOUND', { message: 'no relationship with this id' });
    if (current.status === 'terminated') throw new NeuronError('RELATIONSHIP_TERMINATED', { message: 'the relationship was terminated; terminated relationships cannot change' });
    if (!transition.from.includes(current.status)) {
      throw new NeuronError('CONFLICT', { message: `the relationship is ${current.status}; ${action} applies to ${transition.from.join(' or ')} relationships` });
    }
    if (action === 'resume' && (await isBlocked(trx, current.patientAgentId))) {
      throw new NeuronError('CONFLICT', { message: 'the patient agent is blocked; remove the block before resuming its relationships' });
    }
    let updated: Relationship | null;
    try {
      updated = await setStatus(trx, id, transition.to, reason, at);
    } catch (error) {
      if (action === 'resume' && isUniqueViolation(error)) {
        throw new NeuronError('CONFLICT', { message: 'the patient has another active relationship with this provider; terminate one of them first' });
      }
      throw error;
    }
    if (updated === null) throw new NeuronError('RELATIONSHIP_TERMINATED');
    let webhooks = 0;
    if (action === 'terminate') {
      webhooks = await publishWebhookEvent(trx, 'relationship.terminated', {
        relationship_id: updated.id,
        patient_agent_id: updated.patientAgentId,
        provider_npi: updated.providerNpi,
        reason,
        terminated_at: at,
      }, at);
    }
    await deps.audit.append(trx, {
      type: transition.audit,
      actor: by.actor,
      details: { relationship_id: id, provider_npi: updated.providerNpi, from: current.status, to: transition.to, reason, key_id: by.keyId },
    }, now);
    return { relationship: updated, webhooks };
  });
}

/** Normalises an ISO time to the stored form (UTC, milliseconds) so text comparison orders correctly. */
function storedTime(value: string | undefined): string | undefined {
  return value === undefined ? undefined : new Date(value).toISOString();
}

export function relationshipRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    const IdParams = params('id', Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'relationship id' }));

    app.get('/v1/relationships', {
      config: apiKeyAuth('read'),
      schema: {
        tags: ['relationships'],
        operationId: 'listRelationships',
        summary: 'List relationships',
        description: 'In order of establishment (oldest first). Filters combine with AND.',
        querystring: pageQuery(deps.config.api, {
          provider_npi: Type.Optional(Npi),
          patient_agent_id: Type.Optional(PatientAgentId),
          status: Type.Optional(Type.Enum([...STATUSES])),
          established_from: Type.Optional(Type.String({ format: 'date-time', description: 'established at or after' })),
          established_to: Type.Optional(Type.String({ format: 'date-time', description: 'established before' })),
        }),
        response: { 200: Page(RelationshipSchema) },
      },
    }, async (request) => {
      const query = request.query;
      const page = await listRelationships(deps.storage.db, {
        providerNpi: query.provider_npi,
        patientAgentId: query.patient_agent_id,
        status: query.status,
        establishedFrom: storedTime(query.established_from),
        establishedTo: storedTime(query.established_to),
        after: query.after,
        limit: query.limit,
      });
      return { items: page.items.map(relationshipView), next: page.next };
    });

    app.get('/v1/relationships/:id', {
      config: apiKeyAuth('read'),
      schema: {
        tags: ['relationships'],
        operationId: 'getRelationship',
        querystring: NoQuery,
        summary: 'Get one relationship',
        params: IdParams,
        response: { 200: RelationshipSchema, ...problems({ 404: 'No relationship with this id (NOT_FOUND)' }) },
      },
    }, async (request) => {
      const { id } = request.params;
      const relationship = await getRelationship(deps.storage.db, id);
      if (relationship === null) throw new NeuronError('NOT_FOUND', { message: 'no relationship with this id' });
      return relationshipView(relationship);
    });

    const describe: Record<Action, { summary: string; description: string; operationId: string }> = {
      suspend: {
        operationId: 'suspendRelationship',
        summary: 'Suspend a relationship',
        description: 'Puts an active relationship on hold: the patient\'s handshakes with this provider are refused until it is resumed. 409 if it is not active, 410 if it was terminated.',
      },
      resume: {
        operationId: 'resumeRelationship',
        summary: 'Resume a suspended relationship',
        description: '409 if it is not suspended, if the patient agent is blocked, or if the patient has since got another active relationship with this provider; 410 if it was terminated.',
      },
      terminate: {
        operationId: 'terminateRelationship',
        summary: 'Terminate a relationship (permanent)',
        description: 'Ends an active or suspended relationship for good and publishes the `relationship.terminated` webhook. Any later change answers 410; a new handshake creates a new relationship.',
      },
    };
    for (const action of ['suspend', 'resume', 'terminate'] as const) {
      app.post(`/v1/relationships/:id/${action}`, {
        config: apiKeyAuth('write'),
        schema: {
          tags: ['relationships'],
          ...describe[action],
          querystring: NoQuery,
          params: IdParams,
          body: ReasonBody,
          response: {
            200: RelationshipSchema,
            ...problems({
              404: 'No relationship with this id (NOT_FOUND)',
              409: 'The relationship is not in a state this change applies to (CONFLICT)',
              410: 'The relationship was terminated (RELATIONSHIP_TERMINATED)',
            }),
          },
        },
      }, async (request) => {
        const { id } = request.params;
        const { reason } = request.body;
        const { relationship, webhooks } = await changeRelationshipStatus(deps, id, action, reason, actorFor(request), deps.now?.());
        if (webhooks > 0) deps.nudgeOutbox();
        return relationshipView(relationship);
      });
    }
  };
}
