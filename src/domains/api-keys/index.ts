/** The API keys domain's public face: other folders import it only from here. */
export { ApiKeyService, type ApiKeyServiceOptions } from './service.ts';
export { apiKeyRoutes, ApiKeySchema } from './routes.ts';
export { looksLikeApiKey } from './format.ts';
