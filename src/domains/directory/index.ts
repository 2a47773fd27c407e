/** The directory domain's public face: other folders import it only from here. */
export { DirectoryService } from './service.ts';
export { directoryRoutes } from './routes.ts';
export { directoryKeyOf, upsertFromHandshake, type PatientProfile } from './store.ts';
