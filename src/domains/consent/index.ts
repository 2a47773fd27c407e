/** The consent domain's public face: other folders import it only from here. */
export { ConsentService, type ConsentQuestion, type ConsentServiceOptions } from './service.ts';
export { consentRoutes } from './routes.ts';
export type { ConsentGrant } from './decision.ts';
