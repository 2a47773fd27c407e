/** The API keys domain's public face: other folders import it only from here. */
export { ApiKeyService } from './service.ts';
export { apiKeyRoutes } from './routes.ts';
export { looksLikeApiKey } from './format.ts';
