/** The blocks domain's public face: other folders import it only from here. */
export { BlockService, type BlockActor, type BlockServiceOptions } from './service.ts';
export { blockRoutes, BlockSchema } from './routes.ts';
export type { Block } from './store.ts';
