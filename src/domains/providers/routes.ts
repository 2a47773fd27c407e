/**
 * Provider routes.
 *
 * Roster (API keys; read for GET, admin for every change):
 *   GET    /v1/providers                      list, cursor pagination
 *   POST   /v1/providers                      create (pending unless status=active)
 *   GET    /v1/providers/:npi                 one provider
 *   PATCH  /v1/providers/:npi                 change fields
 *   POST   /v1/providers/:npi/approve         make active, issue the CareAgent credential (shown once)
 *   POST   /v1/providers/:npi/suspend         suspend, revoke the credential
 *   DELETE /v1/providers/:npi                 remove
 *
 * Provider CareAgent (the network's provider client): ./agent-routes.ts (register, heartbeat,
 * disconnect, the relationship notice feed).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { actorFor } from '../../foundation/rest/context.ts';
import { problems } from '../../foundation/rest/schemas.ts';
import type { RouteApp } from '../../foundation/rest/route-app.ts';
import {
  ApprovalResponse,
  ApproveBody,
  CreateProviderBody,
  ListProvidersQuery,
  NpiParams,
  ProviderPage,
  ProviderView,
  SuspendBody,
  UpdateProviderBody,
  type ProviderViewType,
} from './schemas.ts';
import type { ProviderService } from './service.ts';
import type { Provider } from './store.ts';
import { careAgentRoutes, type CareAgentRouteOptions } from './agent-routes.ts';
import { bodyFields, REFUSED_URL } from './route-errors.ts';

export interface ProviderRoutesOptions extends CareAgentRouteOptions {
  pageSize: { default: number; max: number };
  /** The organization's public key, handed to the provider CareAgent with its credential. */
  organizationPublicKey: () => string;
}

export function toProviderView(provider: Provider): ProviderViewType {
  return {
    npi: provider.npi,
    name: provider.name,
    provider_types: provider.providerTypes,
    specialty: provider.specialty,
    status: provider.status,
    provider_endpoint: provider.providerEndpoint,
    provider_public_key: provider.providerPublicKey,
    notification_url: provider.notificationUrl,
    credentials: provider.credentials,
    registration_id_prefix: provider.registrationPrefix,
    agent_status: provider.agentStatus,
    credential_id: provider.credentialId,
    last_seen_at: provider.lastSeenAt,
    registry_state: provider.registryState,
    created_at: provider.createdAt,
    updated_at: provider.updatedAt,
  };
}

const TAGS = ['providers'];
/**
 * Every roster change needs `admin`: the roster decides where patients are sent
 * (provider_endpoint) and who may act as a provider (credentials), which `write` (relationships
 * and profiles) must not reach.
 */
const ROSTER_AUTH = { auth: { kind: 'api_key', scope: 'admin' } } as const;
const NO_PROVIDER = { 404: 'no provider with this NPI' };
/** For POST actions whose body is optional: no body means `{}`. */
const optionalBody = async (request: { body: unknown }): Promise<void> => {
  if (request.body === undefined || request.body === null) request.body = {};
};

type Helpers = { service: ProviderService; pageLimit: (limit: number | undefined) => number; organizationPublicKey: () => string };

/** Reading the roster, adding to it and changing a provider's fields (API keys). */
function rosterEntryRoutes(app: RouteApp, { service, pageLimit }: Helpers): void {
  app.get(
    '/v1/providers',
    {
      config: { auth: { kind: 'api_key', scope: 'read' } },
      schema: {
        tags: TAGS,
        operationId: 'listProviders',
        summary: 'List the provider roster',
        querystring: ListProvidersQuery,
        response: { 200: ProviderPage },
      },
    },
    async (request) => {
      const page = await service.list({
        after: request.query.after,
        limit: pageLimit(request.query.limit),
        status: request.query.status,
      });
      return { items: page.items.map(toProviderView), next: page.next };
    },
  );

  app.post(
    '/v1/providers',
    {
      config: ROSTER_AUTH,
      schema: {
        tags: TAGS,
        operationId: 'createProvider',
        summary: 'Add a provider to the roster',
        body: CreateProviderBody,
        response: { 201: ProviderView, ...problems({ ...REFUSED_URL, 409: 'a provider with this NPI is already on the roster' }) },
      },
    },
    async (request, reply) => {
      const provider = await bodyFields(service.create(request.body, actorFor(request)));
      return reply.code(201).send(toProviderView(provider));
    },
  );

  app.get(
    '/v1/providers/:npi',
    {
      config: { auth: { kind: 'api_key', scope: 'read' } },
      schema: {
        tags: TAGS,
        operationId: 'getProvider',
        summary: 'One provider',
        params: NpiParams,
        response: { 200: ProviderView, ...problems(NO_PROVIDER) },
      },
    },
    async (request) => toProviderView(await service.get(request.params.npi)),
  );

  app.patch(
    '/v1/providers/:npi',
    {
      config: ROSTER_AUTH,
      schema: {
        tags: TAGS,
        operationId: 'updateProvider',
        summary: 'Change a provider (null clears an optional field)',
        params: NpiParams,
        body: UpdateProviderBody,
        response: { 200: ProviderView, ...problems({ ...REFUSED_URL, ...NO_PROVIDER }) },
      },
    },
    async (request) => toProviderView(await bodyFields(service.update(request.params.npi, request.body, actorFor(request)))),
  );
}

/** A provider's standing on the roster: approval (its credential), suspension, removal (API keys, admin). */
function rosterStandingRoutes(app: RouteApp, { service, organizationPublicKey }: Helpers): void {
  app.post(
    '/v1/providers/:npi/approve',
    {
      config: ROSTER_AUTH,
      preValidation: optionalBody,
      schema: {
        tags: TAGS,
        operationId: 'approveProvider',
        summary: 'Make a provider active and issue its CareAgent credential (shown only in this answer)',
        params: NpiParams,
        body: ApproveBody,
        response: {
          200: ApprovalResponse,
          ...problems({ ...NO_PROVIDER, 409: 'no provider_endpoint yet, or already active with a credential (ask for rotate)' }),
        },
      },
    },
    async (request, reply) => {
      const approval = await service.approve(request.params.npi, actorFor(request), { rotate: request.body?.rotate });
      void reply.header('Cache-Control', 'no-store');
      return {
        provider: toProviderView(approval.provider),
        credential: approval.credential,
        credential_id: approval.credentialId,
        registration_id: approval.registrationId,
        rotated: approval.rotated,
        neuron_public_key: organizationPublicKey(),
      };
    },
  );

  app.post(
    '/v1/providers/:npi/suspend',
    {
      config: ROSTER_AUTH,
      preValidation: optionalBody,
      schema: {
        tags: TAGS,
        operationId: 'suspendProvider',
        summary: 'Suspend a provider: handshakes to it are refused and its credential is revoked',
        params: NpiParams,
        body: SuspendBody,
        response: { 200: ProviderView, ...problems(NO_PROVIDER) },
      },
    },
    async (request) => toProviderView(await service.suspend(request.params.npi, actorFor(request), request.body?.reason)),
  );

  app.delete(
    '/v1/providers/:npi',
    {
      config: ROSTER_AUTH,
      schema: {
        tags: TAGS,
        operationId: 'removeProvider',
        summary: 'Remove a provider from the roster (its relationships are kept)',
        params: NpiParams,
        response: { 204: Type.Null({ description: 'removed' }), ...problems(NO_PROVIDER) },
      },
    },
    async (request, reply) => {
      await service.remove(request.params.npi, actorFor(request));
      return reply.code(204).send(null);
    },
  );
}

/** Every provider route: the roster for operators, and the provider CareAgent's own calls (./agent-routes.ts). */
export function providerRoutes(options: ProviderRoutesOptions): FastifyPluginAsync {
  const helpers: Helpers = {
    service: options.service,
    pageLimit: (limit) => Math.min(limit ?? options.pageSize.default, options.pageSize.max),
    organizationPublicKey: options.organizationPublicKey,
  };
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    rosterEntryRoutes(app, helpers);
    rosterStandingRoutes(app, helpers);
    careAgentRoutes(app, options, helpers.pageLimit);
  };
}
