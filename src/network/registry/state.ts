/**
 * What the registry integration persists, behind a small interface (`RegistryStateStore`, declared in
 * types.ts so the types form no import cycle): the Neuron keeps it in its
 * database (store.ts, `DatabaseRegistryStateStore`), shared by every instance; the service's tests
 * use an in-memory one (test/helpers/registry-state.ts).
 *
 * The registration id and bearer token are durable secrets: Axon registers an organization NPI
 * once and never reissues a token. Whatever implements `RegistryStateStore` must keep them as
 * carefully as the database does (durable, never logged, never returned by status or an API).
 */
import type { RegistrationRecord } from './types.ts';

export type { ProviderRegistryState, ProviderRegistryStateName, RegistrationRecord, RegistryStateStore } from './types.ts';

export function isRegistrationRecord(value: unknown): value is RegistrationRecord {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record['registrationId'] === 'string' &&
    typeof record['bearerToken'] === 'string' &&
    typeof record['registryUrl'] === 'string' &&
    typeof record['organizationNpi'] === 'string' &&
    typeof record['endpointUrl'] === 'string' &&
    (record['status'] === 'registered' || record['status'] === 'invalid')
  );
}
