/** The consent domain's public face: other folders import it only from here. */
export { ConsentService } from './service.ts';
export { consentRoutes } from './routes.ts';
