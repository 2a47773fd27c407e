export {
  activeRosterForRegistry,
  providerNoticeTarget,
  readHandshakeProvider,
  resetRegistryStates,
  rosterRegistryStates,
  setRegistryState,
  type ActiveProvider,
} from './store.ts';
export { ProviderService } from './service.ts';
export type {
  CreateProviderInput,
  UpdateProviderInput,
  RosterActor,
} from './roster-inputs.ts';
export { providerAuthPlugin } from './auth.ts';
export { providerRoutes } from './routes.ts';
