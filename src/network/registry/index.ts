export * from './agent-card.ts';
export * from './client.ts';
export * from './remedies.ts';
export * from './schemas.ts';
export { RegistryService } from './service.ts';
export { REGISTRY_STALE_AFTER_MS, registrationRef } from './support.ts';
export * from './state.ts';
export * from './store.ts';
export type * from './types.ts';
