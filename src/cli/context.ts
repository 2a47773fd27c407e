/**
 * What every command shares: the global options, loading the configuration with them as the
 * highest layer, and opening the same storage the server uses (the CLI uses the server's
 * services, never copies of them).
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, loadConfig, type LoadedConfig } from '../foundation/config/index.ts';
import { openStorage, type Storage } from '../foundation/storage/index.ts';
import { storageOptionsFrom } from '../foundation/storage/from-config.ts';
import { CliError, EXIT } from './output.ts';
import { AuditLog, appendTreeHeadSync, pinOrganizationKey } from '../domains/audit/index.ts';
import type { OrganizationKey } from '../foundation/organization/keys.ts';
import { createLogger } from '../foundation/observability/logger.ts';

/** The data directory of each storage a command opened (for its audit log's outside files). */
const dataDirs = new WeakMap<Storage, string>();

/**
 * The audit log for a command: like the server's, it pins the key and appends every tree head it
 * seals to the data directory's tree-head file (synchronously: the command exits right after).
 */
export function cliAudit(storage: Storage, key: OrganizationKey): AuditLog {
  const dataDir = dataDirs.get(storage);
  if (dataDir !== undefined) pinOrganizationKey(dataDir, key);
  return new AuditLog({
    storage,
    key,
    logger: createLogger({ level: 'silent', pretty: 'never' }),
    ...(dataDir === undefined ? {} : { dataDir, onTreeHead: (head) => appendTreeHeadSync(dataDir, head) }),
  });
}

export interface GlobalOptions {
  config?: string;
  dataDir?: string;
  port?: string;
  host?: string;
  logLevel?: string;
  set?: string[];
}

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

export function overridesFrom(options: GlobalOptions): Record<string, unknown> {
  const overrides: Record<string, unknown> = {
    data_dir: options.dataDir,
    'server.port': options.port,
    'server.host': options.host,
    'logging.level': options.logLevel,
  };
  for (const assignment of options.set ?? []) {
    const at = assignment.indexOf('=');
    if (at <= 0) throw new CliError(`--set takes path=value (for example --set handshake.max_queued=500), not "${assignment}"`, EXIT.USAGE);
    overrides[assignment.slice(0, at)] = assignment.slice(at + 1);
  }
  return overrides;
}

/** The flag that sets each path, for problem messages ("from flag --port", not the config file). */
export function overrideSourcesFrom(options: GlobalOptions): Record<string, string> {
  const sources: Record<string, string> = {
    data_dir: 'flag --data-dir',
    'server.port': 'flag --port',
    'server.host': 'flag --host',
    'logging.level': 'flag --log-level',
  };
  for (const assignment of options.set ?? []) {
    const at = assignment.indexOf('=');
    if (at > 0) sources[assignment.slice(0, at)] = `flag --set ${assignment.slice(0, at)}`;
  }
  return sources;
}

export function loadForCli(options: GlobalOptions): LoadedConfig {
  try {
    return loadConfig({ configFile: options.config, overrides: overridesFrom(options), overrideSources: overrideSourcesFrom(options) });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, EXIT.USAGE);
    throw error;
  }
}

/** Opens the database for a command; with `mustExist`, a missing SQLite file is an error rather than created. */
export async function openForCli(loaded: LoadedConfig, options: { mustExist: boolean; migrate: boolean }): Promise<Storage> {
  const { config, paths } = loaded;
  if (config.storage.url === '' && options.mustExist && !existsSync(paths.sqliteFile)) {
    throw new CliError(`no database at ${paths.sqliteFile}; run \`neuron init\` or \`neuron start\` first`, EXIT.FAILURE);
  }
  try {
    // A command needs one connection at a time; two leave room for a transaction and a read.
    const storage = await openStorage(storageOptionsFrom(loaded, { poolMax: 2 }));
    if (options.migrate) await storage.migrate();
    dataDirs.set(storage, paths.dataDir);
    return storage;
  } catch (error) {
    throw new CliError((error as Error).message, EXIT.FAILURE);
  }
}

export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new CliError(`not a duration: "${text}" (use for example 500ms, 3s, 5m, 90d)`, EXIT.USAGE);
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  return Number(match[1]) * units[match[2] ?? 's']!;
}
