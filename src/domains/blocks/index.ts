/** The blocks domain's public face: other folders import it only from here. */
export { BlockService } from './service.ts';
export { blockRoutes } from './routes.ts';
export { isAgentOrKeyBlocked } from './store.ts';
