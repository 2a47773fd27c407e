export {
  activeProviderOf,
  activeRosterForRegistry,
  getActiveProvider,
  getProvider,
  listProviders,
  providerNoticeTarget,
  rosterRegistryStates,
  type ActiveProvider,
  type Provider,
} from './store.ts';
export { ProviderService } from './service.ts';
export type {
  Approval,
  CreateProviderInput,
  UpdateProviderInput,
  RegistrationInput,
  RosterActor,
  RosterChangeType,
} from './roster-inputs.ts';
export { providerAuthPlugin, authenticateProviderRequest } from './auth.ts';
export { providerRoutes, toProviderView } from './routes.ts';
export { PROVIDER_CREDENTIAL_PREFIX, isProviderCredential } from './credentials.ts';
export { providerFieldProblems, PROVIDER_STATUSES, type ProviderStatus } from './validation.ts';
