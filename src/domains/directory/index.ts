/** The directory domain's public face: other folders import it only from here. */
export { DirectoryService, type DirectoryActor, type DirectoryServiceOptions, type ProfilePatch } from './service.ts';
export { directoryRoutes, PatientSchema, ProfileSchema } from './routes.ts';
export { upsertFromHandshake, type PatientEntry, type PatientProfile } from './store.ts';
