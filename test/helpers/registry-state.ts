/**
 * An in-memory `RegistryStateStore` for the registry service's tests: no persistence, and it hands
 * out copies so a test cannot alias the service's state. The Neuron itself keeps the state in its
 * database (src/network/registry/store.ts).
 */
import type { ProviderRegistryState, RegistrationRecord, RegistryStateStore } from '../../src/network/registry/index.ts';

export class MemoryRegistryStateStore implements RegistryStateStore {
  #record: RegistrationRecord | null = null;
  readonly #providers = new Map<string, ProviderRegistryState>();

  async load(): Promise<RegistrationRecord | null> {
    return this.#record === null ? null : { ...this.#record };
  }

  async save(record: RegistrationRecord): Promise<void> {
    this.#record = { ...record };
  }

  async loadProviderStates(): Promise<Map<string, ProviderRegistryState>> {
    return new Map([...this.#providers].map(([npi, state]) => [npi, { ...state }]));
  }

  async saveProviderState(npi: string, state: ProviderRegistryState): Promise<void> {
    this.#providers.set(npi, { ...state });
  }

  async clear(): Promise<void> {
    this.#record = null;
    this.#providers.clear();
  }
}
