export { activeProviderOf, getActiveProvider, getProvider, listProviders, type ActiveProvider, type Provider } from './store.ts';
export {
  ProviderService,
  type Approval,
  type CreateProviderInput,
  type UpdateProviderInput,
  type RegistrationInput,
  type RosterChangeType,
} from './service.ts';
export { providerAuthPlugin, authenticateProviderRequest } from './auth.ts';
export { providerRoutes, toProviderView } from './routes.ts';
export { PROVIDER_CREDENTIAL_PREFIX, isProviderCredential } from './credentials.ts';
export { providerFieldProblems, PROVIDER_STATUSES, type ProviderStatus } from './validation.ts';
