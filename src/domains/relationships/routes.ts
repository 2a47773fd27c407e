/**
 * REST routes for relationships: list, read, and the organization-side status changes
 * (suspend, resume, terminate), whose rule is in ./transitions.ts and which RelationshipService
 * (./service.ts) applies, audited with the caller as actor.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type, { type Static } from 'typebox';
import { actorFor, apiKeyAuth, type RouteContext } from '../../foundation/rest/context.ts';
import { Npi, Page, PatientAgentId, ReasonBody, Timestamp, pageQuery, params, problems, NoQuery } from '../../foundation/rest/schemas.ts';
import type { Relationship } from './store.ts';
import type { RelationshipService } from './service.ts';
import { RELATIONSHIP_ACTIONS, type RelationshipAction } from './transitions.ts';

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

/** Normalises an ISO time to the stored form (UTC, milliseconds) so text comparison orders correctly. */
function storedTime(value: string | undefined): string | undefined {
  return value === undefined ? undefined : new Date(value).toISOString();
}

type RelationshipRouteOptions = RouteContext & { service: RelationshipService };

const IdParams = params('id', Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'relationship id' }));

export function relationshipRoutes(deps: RelationshipRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    // Both halves register on this same instance (no encapsulation between them).
    await readRoutes(deps)(instance, {});
    await statusChangeRoutes(deps)(instance, {});
  };
}

/** Listing relationships and reading one. */
function readRoutes(deps: RelationshipRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/relationships',
      {
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
      },
      async (request) => {
        const query = request.query;
        const page = await deps.service.list({
          providerNpi: query.provider_npi,
          patientAgentId: query.patient_agent_id,
          status: query.status,
          establishedFrom: storedTime(query.established_from),
          establishedTo: storedTime(query.established_to),
          after: query.after,
          limit: query.limit,
        });
        return { items: page.items.map(relationshipView), next: page.next };
      },
    );

    app.get(
      '/v1/relationships/:id',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['relationships'],
          operationId: 'getRelationship',
          querystring: NoQuery,
          summary: 'Get one relationship',
          params: IdParams,
          response: { 200: RelationshipSchema, ...problems({ 404: 'No relationship with this id (NOT_FOUND)' }) },
        },
      },
      async (request) => {
        const { id } = request.params;
        return relationshipView(await deps.service.get(id));
      },
    );
  };
}

/** Suspend, resume and terminate (the rule is in ./transitions.ts). */
function statusChangeRoutes(deps: RelationshipRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    const describe: Record<RelationshipAction, { summary: string; description: string; operationId: string }> = {
      suspend: {
        operationId: 'suspendRelationship',
        summary: 'Suspend a relationship',
        description:
          "Puts an active relationship on hold: the patient's handshakes with this provider are refused until it is resumed. 409 if it is not active, 410 if it was terminated.",
      },
      resume: {
        operationId: 'resumeRelationship',
        summary: 'Resume a suspended relationship',
        description:
          '409 if it is not suspended, if the patient agent is blocked, or if the patient has since got another active relationship with this provider; 410 if it was terminated.',
      },
      terminate: {
        operationId: 'terminateRelationship',
        summary: 'Terminate a relationship (permanent)',
        description:
          'Ends an active or suspended relationship for good and publishes the `relationship.terminated` webhook. Any later change answers 410; a new handshake creates a new relationship.',
      },
    };
    for (const action of RELATIONSHIP_ACTIONS) {
      app.post(
        `/v1/relationships/:id/${action}`,
        {
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
        },
        async (request) => {
          const { id } = request.params;
          const { reason } = request.body;
          const { relationship, webhooks } = await deps.service.changeStatus(id, action, reason, actorFor(request));
          if (webhooks > 0) deps.nudgeOutbox();
          return relationshipView(relationship);
        },
      );
    }
  };
}
