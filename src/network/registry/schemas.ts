/**
 * Shapes of the Axon registry's answers (shared/spec/registry.md), checked before we trust them.
 * Only the fields the Neuron relies on are required; anything extra is allowed and ignored.
 */
import Type, { type Static } from 'typebox';

export const RegisterNeuronResponseSchema = Type.Object({
  registration_id: Type.String({ minLength: 1 }),
  bearer_token: Type.String({ minLength: 1 }),
  status: Type.String(),
});

export const HeartbeatResponseSchema = Type.Object({
  status: Type.String(),
});

export const RegisterProviderResponseSchema = Type.Object({
  provider_id: Type.String(),
  status: Type.String(),
});

/** The contract does not fix an entry's fields; we only require an object. */
export const RegistryEntrySchema = Type.Record(Type.String(), Type.Unknown());
export type RegistryEntry = Static<typeof RegistryEntrySchema>;

export const SearchResponseSchema = Type.Object({
  results: Type.Array(RegistryEntrySchema),
});

export const ErrorResponseSchema = Type.Object({
  error: Type.String(),
});
