/**
 * REST routes for the patient directory: search and read (read scope), edit or delete the
 * front-desk profile (write scope). Profile edits are JSON merge patches (RFC 7396) of the three
 * allow-listed fields; any other field is refused with 400 naming it.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type, { type Static } from 'typebox';
import { DISPLAY_TEXT_PATTERN, PROTOCOL_BOUNDS } from 'neuron-careagent-client/protocol';
import { actorFor, apiKeyAuth, type RouteContext } from '../../foundation/rest/context.ts';
import { Cursor, Page, PatientAgentId, Timestamp, pageQuery, params, problems, NoQuery } from '../../foundation/rest/schemas.ts';
import type { PatientEntry } from './store.ts';
import type { DirectoryService, ProfilePatch } from './service.ts';

// No control characters and no bidirectional controls (protocol/limits.ts): refused with VALIDATION_FAILED.
const DisplayName = Type.String({ minLength: 1, maxLength: PROTOCOL_BOUNDS.displayNameMaxChars, pattern: DISPLAY_TEXT_PATTERN });
const DateOfBirth = Type.String({ format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'YYYY-MM-DD' });
const PreferredLanguage = Type.String({
  maxLength: PROTOCOL_BOUNDS.preferredLanguageMaxChars,
  pattern: '^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$',
  description: 'BCP 47 language tag, for example en-US',
});

export const ProfileSchema = Type.Object(
  {
    display_name: Type.Optional(DisplayName),
    date_of_birth: Type.Optional(DateOfBirth),
    preferred_language: Type.Optional(PreferredLanguage),
  },
  { additionalProperties: false, description: 'front-desk demographics only; never clinical data' },
);

const ProfilePatchSchema = Type.Object(
  {
    display_name: Type.Optional(Type.Union([DisplayName, Type.Null()])),
    date_of_birth: Type.Optional(Type.Union([DateOfBirth, Type.Null()])),
    preferred_language: Type.Optional(Type.Union([PreferredLanguage, Type.Null()])),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'a JSON merge patch: a value sets the field, null removes it, an absent field is left as it is',
  },
);

export const PatientSchema = Type.Object(
  {
    patient_agent_id: Type.String(),
    patient_endpoint: Type.String({ description: 'where the patient CareAgent is reached' }),
    profile: Type.Union([ProfileSchema, Type.Null()]),
    first_seen_at: Timestamp,
    last_seen_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);

function patientView(entry: PatientEntry): Static<typeof PatientSchema> {
  return {
    patient_agent_id: entry.patientAgentId,
    patient_endpoint: entry.patientEndpoint,
    profile: entry.profile,
    first_seen_at: entry.firstSeenAt,
    last_seen_at: entry.lastSeenAt,
    updated_at: entry.updatedAt,
  };
}

type DirectoryRouteOptions = RouteContext & { service: DirectoryService };

export function directoryRoutes(deps: DirectoryRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    // JSON merge patch bodies are JSON.
    instance.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, instance.getDefaultJsonParser('error', 'error'));
    // Both halves register on this same instance (no encapsulation between them).
    await listingRoutes(deps)(instance, {});
    await entryRoutes(deps)(instance, {});
  };
}

/** Listing and searching the directory. */
function listingRoutes(deps: DirectoryRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    const { service } = deps;

    app.get(
      '/v1/patients',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['patients'],
          operationId: 'listPatients',
          summary: 'List or search the patient directory',
          description: 'In agent id order. `search` matches a case-insensitive substring of the agent id or the profile.',
          querystring: pageQuery(deps.config.api, {
            search: Type.Optional(Type.String({ maxLength: 100, description: 'case-insensitive substring of the agent id or profile' })),
          }),
          response: { 200: Page(PatientSchema) },
        },
      },
      async (request) => {
        const query = request.query;
        const page = await service.list({ search: query.search, after: query.after, limit: query.limit });
        return { items: page.items.map(patientView), next: page.next };
      },
    );

    // The search term travels in the body, so it is never in a URL, a proxy's access log or ours.
    app.post(
      '/v1/patients/search',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['patients'],
          operationId: 'searchPatients',
          querystring: NoQuery,
          summary: 'Search the patient directory (term in the body)',
          description:
            "The same search and answer as `GET /v1/patients?search=`, with the term in the body so that it never appears in a URL or a log. `query` matches a case-insensitive substring of the agent id or the display name; pass the answer's `next` as `cursor` for the following page.",
          body: Type.Object(
            {
              query: Type.String({
                maxLength: 100,
                description: 'case-insensitive substring of the agent id or display name; empty lists everyone',
              }),
              limit: Type.Optional(
                Type.Integer({
                  minimum: 1,
                  maximum: deps.config.api.page_size_max,
                  description: `items per page (1-${deps.config.api.page_size_max}, default ${deps.config.api.page_size_default})`,
                }),
              ),
              cursor: Type.Optional(Cursor),
            },
            { additionalProperties: false },
          ),
          response: { 200: Page(PatientSchema) },
        },
      },
      async (request) => {
        const body = request.body;
        const page = await service.list({ search: body.query, after: body.cursor, limit: body.limit ?? deps.config.api.page_size_default });
        return { items: page.items.map(patientView), next: page.next };
      },
    );
  };
}

/** One directory entry: read it, edit or delete its front-desk profile. */
function entryRoutes(deps: DirectoryRouteOptions): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    const { service } = deps;
    const IdParams = params('patient_agent_id', PatientAgentId);
    const notFound = problems({ 404: 'No patient with this agent id in the directory (NOT_FOUND)' });

    app.get(
      '/v1/patients/:patient_agent_id',
      {
        config: apiKeyAuth('read'),
        schema: {
          tags: ['patients'],
          operationId: 'getPatient',
          querystring: NoQuery,
          summary: 'Get one directory entry',
          params: IdParams,
          response: { 200: PatientSchema, ...notFound },
        },
      },
      async (request) => {
        const { patient_agent_id: id } = request.params;
        return patientView(await service.get(id));
      },
    );

    app.patch(
      '/v1/patients/:patient_agent_id/profile',
      {
        config: apiKeyAuth('write'),
        schema: {
          tags: ['patients'],
          operationId: 'updatePatientProfile',
          querystring: NoQuery,
          summary: 'Edit the front-desk profile',
          description:
            'A JSON merge patch (`application/json` or `application/merge-patch+json`) of `display_name`, `date_of_birth` and `preferred_language`. Audited with the names of the fields changed, never their values.',
          params: IdParams,
          body: ProfilePatchSchema,
          response: { 200: PatientSchema, ...notFound },
        },
      },
      async (request) => {
        const { patient_agent_id: id } = request.params;
        return patientView(await service.updateProfile(id, request.body as ProfilePatch, actorFor(request)));
      },
    );

    app.delete(
      '/v1/patients/:patient_agent_id/profile',
      {
        config: apiKeyAuth('write'),
        schema: {
          tags: ['patients'],
          operationId: 'deletePatientProfile',
          querystring: NoQuery,
          summary: 'Delete the front-desk profile',
          description: 'Removes the demographics. The directory entry, the relationships and the audit trail stay. Idempotent.',
          params: IdParams,
          response: { 204: Type.Null({ description: 'Deleted' }), ...notFound },
        },
      },
      async (request, reply) => {
        const { patient_agent_id: id } = request.params;
        await service.deleteProfile(id, actorFor(request));
        return reply.code(204).send(null);
      },
    );
  };
}
