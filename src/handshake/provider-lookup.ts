/**
 * The handshake's view of a provider: one this Neuron serves, `active` in the roster, with a
 * CareAgent endpoint to hand the patient (a provider without one could not be reached, so it
 * cannot take patients). Anything else is PROVIDER_NOT_FOUND.
 *
 * The rule is read from the database on every handshake, before the challenge and again inside
 * the completing transaction, as part of the handshake's single combined read (./store.ts), so
 * a provider approved or suspended through the CLI, the API or another instance counts from the
 * next handshake on and no cache needs invalidating. It is the same rule as the roster's own
 * `getActiveProvider` (src/providers/store.ts), folded into that one statement.
 */
export interface ActiveProvider {
  npi: string;
  /** The provider CareAgent's direct address, handed to the patient in handshake.complete. */
  endpoint: string;
  /** 43-char base64url, or null when the provider registered no key. */
  publicKey: string | null;
}
