/**
 * A real Neuron for tests: a temporary directory with a config file, embedded SQLite, port 0 on
 * 127.0.0.1, discovery and registry off, no default process metrics, logging silent, outbound
 * deliveries to loopback allowed (test receivers listen on 127.0.0.1).
 *
 *   const t = await startTestNeuron({ handshake: { max_concurrent_handshakes: 2 } });
 *   await insertProvider(t.neuron, { npi: '1679576722' });
 *   ... t.handshakeUrl ...
 *   await t.stop();                       // stops and removes the directory
 *
 * Restart on the same data: `await t.stop({ keepData: true })` then
 * `startTestNeuron({ dataDir: t.dataDir })`.
 *
 * Most handshake tests start from one provider on the roster, on each test backend:
 *   const t = await startNeuronWithProvider({ npi: '1679576722' }, { backend });
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/foundation/config/index.ts';
import { createNeuron, type Neuron, type NeuronOptions } from '../../src/main.ts';
import { isoNow } from '../../src/foundation/storage/index.ts';
import type { TestBackend } from './databases.ts';

/** Config sections to merge over the test defaults (one level deep per section). */
export type ConfigOverrides = Record<string, unknown>;

export interface StartTestNeuronOptions {
  /** Merged over the defaults below, section by section. */
  config?: ConfigOverrides;
  /** Reuse a data directory (and its config file) from an earlier test Neuron. */
  dataDir?: string;
  neuronOptions?: NeuronOptions;
}

export interface TestNeuron {
  neuron: Neuron;
  /** http://127.0.0.1:<port> */
  url: string;
  /** ws://127.0.0.1:<port>/ws/handshake */
  handshakeUrl: string;
  port: number;
  dataDir: string;
  configFile: string;
  /** Stops the Neuron; removes the directory unless keepData. Safe to call twice. */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

const TEST_DEFAULTS: ConfigOverrides = {
  organization: { name: 'Test Practice', npi: '1245319599' },
  server: { host: '127.0.0.1', port: 0 },
  discovery: { enabled: false },
  registry: { enabled: false },
  logging: { level: 'silent', pretty: 'never' },
  // Test receivers listen on 127.0.0.1, which the outbound policy refuses by default; a test
  // about the policy itself sets outbound.allow_loopback back to false.
  outbound: { allow_loopback: true },
};

function merge(base: ConfigOverrides, over: ConfigOverrides): ConfigOverrides {
  const result: ConfigOverrides = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const existing = result[key];
    result[key] =
      value !== null &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      existing !== null &&
      typeof existing === 'object' &&
      !Array.isArray(existing)
        ? { ...(existing as ConfigOverrides), ...(value as ConfigOverrides) }
        : value;
  }
  return result;
}

export async function startTestNeuron(options: StartTestNeuronOptions = {}): Promise<TestNeuron> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'neuron-test-'));
  const configFile = path.join(dataDir, 'neuron.config.json');
  const config = merge(TEST_DEFAULTS, { ...(options.config ?? {}), data_dir: '.' });
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const neuron = createNeuron(loadConfig({ configFile, env: {} }), { defaultMetrics: false, ...options.neuronOptions });
  try {
    await neuron.start();
  } catch (error) {
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const address = neuron.address();
  let stopped = false;
  return {
    neuron,
    url: address.url,
    handshakeUrl: address.handshakeUrl,
    port: address.port,
    dataDir,
    configFile,
    async stop(stopOptions = {}) {
      if (!stopped) {
        stopped = true;
        await neuron.stop();
      }
      if (!stopOptions.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestProvider {
  npi: string;
  name?: string;
  status?: 'pending' | 'active' | 'suspended';
  endpoint?: string | null;
  publicKey?: string | null;
  types?: string[];
  specialty?: string | null;
  credentials?: unknown[];
}

/** Inserts a provider row directly (the roster's own service may not be wired yet). */
export async function insertProvider(neuron: Neuron, provider: TestProvider): Promise<void> {
  const at = isoNow();
  await neuron.storage.db
    .insertInto('providers')
    .values({
      npi: provider.npi,
      name: provider.name ?? `Dr. Test ${provider.npi.slice(-4)}`,
      provider_types: JSON.stringify(provider.types ?? ['physician']),
      specialty: provider.specialty ?? null,
      credentials: JSON.stringify(provider.credentials ?? []),
      status: provider.status ?? 'active',
      provider_endpoint: provider.endpoint === undefined ? `wss://provider-${provider.npi}.example/agent` : provider.endpoint,
      provider_public_key: provider.publicKey ?? null,
      notification_url: null,
      registration_id: null,
      credential_id: null,
      credential_digest: null,
      last_seen_at: null,
      registry_state: 'unregistered',
      registry_error: null,
      created_at: at,
      updated_at: at,
    })
    .execute();
}

/** Changes a provider's status directly, as the CLI or another instance would. */
export async function setProviderStatus(neuron: Neuron, npi: string, status: 'pending' | 'active' | 'suspended'): Promise<void> {
  await neuron.storage.db.updateTable('providers').set({ status, updated_at: isoNow() }).where('npi', '=', npi).execute();
}

/**
 * startTestNeuron with `provider` on its roster: what a handshake test starts from. With a
 * PostgreSQL `backend` the Neuron stores in a fresh schema of its own, dropped by stop() (unless
 * keepData); otherwise (no backend, or SQLite) in its own file in its data directory.
 */
export async function startNeuronWithProvider(
  provider: TestProvider,
  options: StartTestNeuronOptions & { backend?: TestBackend } = {},
): Promise<TestNeuron> {
  const { backend, ...startOptions } = options;
  const database = backend?.name === 'postgres' ? await backend.open() : undefined;
  let t: TestNeuron | undefined;
  try {
    t = await startTestNeuron(
      database ? { ...startOptions, config: { ...startOptions.config, storage: { url: database.options.url } } } : startOptions,
    );
    await insertProvider(t.neuron, provider);
  } catch (error) {
    await t?.stop();
    await database?.close();
    throw error;
  }
  if (database === undefined) return t;
  const started = t;
  return {
    ...started,
    async stop(stopOptions = {}) {
      await started.stop(stopOptions);
      if (!stopOptions.keepData) await database.close();
    },
  };
}
