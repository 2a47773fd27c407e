/**
 * A real Neuron wired to the fake registry: temporary directory, config file, embedded SQLite,
 * port 0 on 127.0.0.1, registry enabled with millisecond intervals, logs captured as JSON lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig } from '../../src/foundation/config/index.ts';
import { createNeuron, type Neuron } from '../../src/main.ts';
import type { FakeRegistry } from '../fakes/fake-registry.ts';
import { insertProvider as insertTestProvider } from '../helpers/neuron.ts';
import { runProcess, type ProcessResult } from '../helpers/run-process.ts';

export const ORG_NPI = '1245319599';
export const DR_ONE = '1679576722';
export const DR_TWO = '1376841239';
export const DR_PENDING = '1003000126';
export const DR_SUSPENDED = '1234567893';
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'neuron.js');

// Small intervals keep the tests short; the deadlines below are generous and only bound a failure.
export const REGISTRY_SETTINGS = {
  heartbeat_interval_ms: 150,
  request_timeout_ms: 1_000,
  backoff_initial_ms: 20,
  backoff_max_ms: 100,
};

export interface Harness {
  dir: string;
  configFile: string;
  logs: string[];
  neuron: Neuron;
  /** Starts a Neuron over the same directory (a restart). */
  restart(): Promise<Neuron>;
  cleanup(): Promise<void>;
}

export function writeConfig(dir: string, fake: FakeRegistry | null, extra: Record<string, unknown> = {}): string {
  const configFile = path.join(dir, 'neuron.config.json');
  const config = {
    organization: { name: 'Synthetic Family Practice', npi: ORG_NPI, type: 'practice' },
    data_dir: '.',
    server: { host: '127.0.0.1', port: 0 },
    registry: fake === null ? { enabled: false } : { enabled: true, url: fake.url, ...REGISTRY_SETTINGS },
    discovery: { enabled: false },
    logging: { level: 'debug', pretty: 'never' },
    ...extra,
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
  return configFile;
}

export async function startNeuron(fake: FakeRegistry | null, extra: Record<string, unknown> = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'neuron-presence-'));
  const configFile = writeConfig(dir, fake, extra);
  const logs: string[] = [];
  const running: Neuron[] = [];
  const boot = async (): Promise<Neuron> => {
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString());
        done();
      },
    });
    const neuron = createNeuron(loadConfig({ configFile, env: {} }), { logger: pino({ level: 'debug' }, stream), defaultMetrics: false });
    await neuron.start();
    running.push(neuron);
    return neuron;
  };
  const harness: Harness = {
    dir,
    configFile,
    logs,
    neuron: await boot(),
    async restart() {
      await harness.neuron.stop();
      harness.neuron = await boot();
      return harness.neuron;
    },
    async cleanup() {
      await Promise.all(running.map((neuron) => neuron.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

export async function insertProvider(
  neuron: Neuron,
  npi: string,
  status: 'pending' | 'active' | 'suspended' = 'active',
  types: string[] = ['physician'],
): Promise<void> {
  await insertTestProvider(neuron, {
    npi,
    name: `Dr. Synthetic ${npi.slice(-4)}`,
    status,
    types,
    specialty: 'family medicine',
    credentials: [{ type: 'license', issuer: 'Synthetic Board', identifier: `L-${npi.slice(-4)}`, status: 'active' }],
  });
}

export async function rosterRegistryState(neuron: Neuron, npi: string): Promise<{ state: string; error: string | null } | null> {
  const row = await neuron.storage.db
    .selectFrom('providers')
    .select(['registry_state', 'registry_error'])
    .where('npi', '=', npi)
    .executeTakeFirst();
  return row === undefined ? null : { state: row.registry_state, error: row.registry_error };
}

export async function auditTypes(neuron: Neuron, type: string): Promise<Array<{ actor: string; details: Record<string, unknown> }>> {
  const rows = await neuron.storage.db
    .selectFrom('audit_log')
    .select(['actor', 'details'])
    .where('event_type', '=', type)
    .orderBy('seq')
    .execute();
  return rows.map((row) => ({ actor: row.actor, details: JSON.parse(row.details) as Record<string, unknown> }));
}

export function count(fake: FakeRegistry, method: string, pattern: RegExp): number {
  return fake.requests.filter((request) => request.method === method && pattern.test(request.path)).length;
}

export const NEURON_POSTS = /^\/v1\/neurons$/;
export const HEARTBEATS = /^\/v1\/neurons\/[^/]+\/endpoint$/;
export const PROVIDER_POSTS = /^\/v1\/neurons\/[^/]+\/providers$/;
export const providerDeletes = (npi: string): RegExp => new RegExp(`^/v1/neurons/[^/]+/providers/${npi}$`);

/**
 * Runs the `neuron` command (a real process) with the harness's config. Asynchronous, so the fake
 * registry in this process keeps answering while the command runs.
 */
export function cli(configFile: string, args: string[], env: Record<string, string> = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [BIN, '--config', configFile, ...args], {
    cwd: path.dirname(configFile),
    // NEURON_TEST_* variables (the PostgreSQL test URL) are for the test runner, not config overrides.
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('NEURON_TEST_'))),
      NO_COLOR: '1',
      NEURON_LOGGING__PRETTY: 'never',
      ...env,
    },
    // Generous: a cold start compiles TypeScript through tsx.
    timeoutMs: 60_000,
  });
}
