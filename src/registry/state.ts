/**
 * What the registry integration persists, behind a small interface so the storage layer can be
 * swapped (in-memory for tests, a JSON file as the embedded default, a database table later).
 *
 * The registration id and bearer token are durable secrets: Axon registers an organization NPI
 * once and never reissues a token. Whatever implements `RegistryStateStore` must keep them at
 * least as carefully as the JSON file store below does (owner-only file, atomic replace).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, chmod, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { NeuronError } from '../errors/index.ts';
import type { RegistryStatusSnapshot } from './service.ts';

export interface RegistrationRecord {
  registrationId: string;
  /** Secret. Never log it, never return it from status or an API. */
  bearerToken: string;
  /** The registry this registration belongs to; another URL means another registry. */
  registryUrl: string;
  /** The organization NPI that was registered (one registration per NPI). */
  organizationNpi: string;
  /** The handshake URL last confirmed by the registry (at registration or heartbeat). */
  endpointUrl: string;
  registeredAt: string;
  /** `invalid` once the registry refused the credentials (401); stays so across restarts. */
  status: 'registered' | 'invalid';
  lastHeartbeatAt: string | null;
  consecutiveFailures: number;
  lastError: string | null;
}

/**
 * Where one provider stands with the registry.
 * - `pending`: should be registered, not confirmed yet (registry unreachable or not registered yet)
 * - `registered`: the registry holds it (a duplicate answer counts)
 * - `rejected`: the registry refused it (for example a type outside the taxonomy); not retried
 *   until the provider is submitted again
 * - `removing`: should be removed, not confirmed yet
 * - `removed`: the registry acknowledged the removal (it may keep the entry)
 */
export type ProviderRegistryStateName = 'pending' | 'registered' | 'rejected' | 'removing' | 'removed';

export interface ProviderRegistryState {
  npi: string;
  state: ProviderRegistryStateName;
  lastError: string | null;
  updatedAt: string;
}

export interface RegistryStateStore {
  /** The stored registration, or null when this Neuron never registered. Throws when unreadable. */
  load(): Promise<RegistrationRecord | null>;
  save(record: RegistrationRecord): Promise<void>;
  loadProviderStates(): Promise<Map<string, ProviderRegistryState>>;
  saveProviderState(npi: string, state: ProviderRegistryState): Promise<void>;
  /** Forgets the registration and every provider state (operator reset; the registry keeps its entry). */
  clear(): Promise<void>;
  /**
   * Optional: keeps the latest `status()` (no secret in it) where other processes can read it, so
   * `neuron status` and other instances can show a fault such as a 401 and its remedy.
   */
  saveStatus?(status: RegistryStatusSnapshot): Promise<void>;
  loadStatus?(): Promise<RegistryStatusSnapshot | null>;
}

/** For tests and for running without persistence. Hands out copies so callers cannot alias. */
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

interface StateFile {
  version: 1;
  registration: RegistrationRecord | null;
  providers: Record<string, ProviderRegistryState>;
}

// Owner read/write only: the file holds the bearer token.
const FILE_MODE = 0o600;
// Owner-only directory when we have to create it.
const DIR_MODE = 0o700;

/**
 * The embedded default: one JSON file, replaced atomically (write a temp file beside it, fsync,
 * rename) so a crash leaves either the old or the new content, never half a token. Writes are
 * serialized; the whole state is small (one registration plus one line per provider).
 */
export class JsonFileRegistryStateStore implements RegistryStateStore {
  readonly file: string;
  #cache: StateFile | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    this.file = path.resolve(file);
  }

  async load(): Promise<RegistrationRecord | null> {
    const state = await this.#read();
    return state.registration === null ? null : { ...state.registration };
  }

  save(record: RegistrationRecord): Promise<void> {
    return this.#mutate((state) => {
      state.registration = { ...record };
    });
  }

  async loadProviderStates(): Promise<Map<string, ProviderRegistryState>> {
    const state = await this.#read();
    return new Map(Object.entries(state.providers).map(([npi, value]) => [npi, { ...value }]));
  }

  saveProviderState(npi: string, value: ProviderRegistryState): Promise<void> {
    return this.#mutate((state) => {
      state.providers[npi] = { ...value };
    });
  }

  clear(): Promise<void> {
    return this.#mutate((state) => {
      state.registration = null;
      state.providers = {};
    });
  }

  async #read(): Promise<StateFile> {
    if (this.#cache !== null) return this.#cache;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#cache = { version: 1, registration: null, providers: {} };
        return this.#cache;
      }
      throw new NeuronError('SERVER_ERROR', { message: 'The registry state file cannot be read', cause: error });
    }
    this.#cache = parseStateFile(text);
    // A file copied in by hand may be group- or world-readable; tighten it.
    const info = await stat(this.file);
    if ((info.mode & 0o077) !== 0) await chmod(this.file, FILE_MODE);
    return this.#cache;
  }

  #mutate(change: (state: StateFile) => void): Promise<void> {
    const run = async (): Promise<void> => {
      const current = await this.#read();
      const next: StateFile = structuredClone(current);
      change(next);
      await this.#write(next);
      this.#cache = next;
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #write(state: StateFile): Promise<void> {
    const dir = path.dirname(this.file);
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    const temp = path.join(dir, `.${path.basename(this.file)}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temp, 'wx', FILE_MODE);
    try {
      await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`, 'utf8');
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, this.file);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    // Make the rename itself durable; not every platform can open a directory, so best effort.
    try {
      const dirHandle = await open(dir, 'r');
      await dirHandle.sync().finally(() => dirHandle.close());
    } catch {
      // ignored: the data file itself was synced
    }
  }
}

function parseStateFile(text: string): StateFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new NeuronError('SERVER_ERROR', { message: 'The registry state file is not valid JSON', cause: error });
  }
  if (
    value === null ||
    typeof value !== 'object' ||
    (value as { version?: unknown }).version !== 1 ||
    typeof (value as { providers?: unknown }).providers !== 'object' ||
    (value as { providers?: unknown }).providers === null
  ) {
    throw new NeuronError('SERVER_ERROR', { message: 'The registry state file has an unknown layout' });
  }
  const registration = (value as { registration?: unknown }).registration ?? null;
  if (registration !== null && !isRegistrationRecord(registration)) {
    throw new NeuronError('SERVER_ERROR', { message: 'The registry state file holds an incomplete registration' });
  }
  return value as StateFile;
}

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
