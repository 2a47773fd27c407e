/**
 * Authentication of provider CareAgents: routes that declare `auth: { kind: 'provider' }` need
 * `Authorization: Bearer nprv_…` of an active provider; routes that declare
 * `provider_or_api_key` accept such a credential too, and leave every other token to the API-key
 * hook (src/domains/api-keys/). Either hook does nothing when the other has already set
 * `request.principal`.
 *
 * The plugin is not encapsulated (skip-override), so its hook covers every route registered
 * after it, whichever plugin registers them.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { routeAuth } from '../../foundation/rest/principal.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { bearerToken, isProviderCredential } from './credentials.ts';
import type { ProviderService } from './service.ts';

const UNAUTHENTICATED_HEADERS = { 'WWW-Authenticate': 'Bearer realm="neuron"' } as const;

/**
 * Said to a provider CareAgent that sent no credential (the network's client calls
 * /v1/consent/verify without one): which credential, and how a provider gets it.
 */
export const MISSING_CREDENTIAL =
  'this route needs the provider CareAgent credential in Authorization: Bearer nprv_…; ' +
  "a provider gets it when the organization's operator approves it (POST /v1/providers/{npi}/approve or neuron provider approve), " +
  'after registering with POST /v1/providers/register; see docs/providers.md';

export async function authenticateProviderRequest(service: ProviderService, request: FastifyRequest): Promise<void> {
  const auth = routeAuth(request);
  if (!auth || (auth.kind !== 'provider' && auth.kind !== 'provider_or_api_key')) return;
  if (request.principal) return;
  const token = bearerToken(request.headers.authorization);
  // Not a provider credential on a route that also takes API keys: the API-key hook decides.
  if (auth.kind === 'provider_or_api_key' && (token === null || !isProviderCredential(token))) return;
  if (token === null) {
    throw new NeuronError('UNAUTHENTICATED', { message: MISSING_CREDENTIAL, headers: UNAUTHENTICATED_HEADERS });
  }
  const principal = await service.authenticate(token);
  if (!principal)
    throw new NeuronError('UNAUTHENTICATED', { message: 'the provider credential is not valid', headers: UNAUTHENTICATED_HEADERS });
  request.principal = principal;
}

export function providerAuthPlugin(service: ProviderService): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app) => {
    if (!app.hasRequestDecorator('principal')) app.decorateRequest('principal', null);
    app.addHook('onRequest', async (request) => authenticateProviderRequest(service, request));
  };
  // Same effect as wrapping in fastify-plugin: the hook applies outside this plugin's scope.
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
