/**
 * Configuration loading: defaults (in the schema) < config file < NEURON_* environment < flags.
 * Every problem is collected and reported at once, each with its path, so an operator fixes a
 * file in one pass instead of one error per restart.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { ConfigSchema, secretPaths, type NeuronConfig } from './schema.ts';
import { isValidNpi, NPI_RULE } from './npi.ts';
import { OutboundPolicy, outboundSettingsProblems } from '../outbound/policy.ts';
import { trustedProxyProblem } from './trusted-proxies.ts';

export const DEFAULT_CONFIG_FILE = 'neuron.config.json';
/** Environment variables with this prefix override the file; `__` separates nesting levels. */
export const ENV_PREFIX = 'NEURON_';
/** NEURON_CONFIG names the config file; it is not an option itself. */
const RESERVED_ENV = new Set(['NEURON_CONFIG']);
/** Variables for the test tooling (NEURON_TEST_POSTGRES_URL, …), never configuration. */
const RESERVED_ENV_PREFIX = 'NEURON_TEST_';

export interface ConfigProblem {
  path: string;
  message: string;
  /** Where the offending value came from: the config file, an environment variable or a flag. */
  source?: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], source: string) {
    super(
      `invalid configuration (${source}):\n${problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}${p.source ? ` (from ${p.source})` : ''}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ConfigPaths {
  /** The config file used, or null when none exists (defaults, env and flags only). */
  configFile: string | null;
  /** Directory relative paths in the config are resolved against. */
  baseDir: string;
  dataDir: string;
  sqliteFile: string;
  pidFile: string;
}

export interface LoadedConfig {
  config: NeuronConfig;
  paths: ConfigPaths;
}

export interface LoadOptions {
  /** Explicit config file; otherwise NEURON_CONFIG, otherwise ./neuron.config.json if present. */
  configFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Highest-precedence overrides as dotted paths, for example { 'server.port': 0 }. */
  overrides?: Record<string, unknown>;
  /** How each override was given, for problem messages (for example { 'server.port': 'flag --port' }). */
  overrideSources?: Record<string, string>;
  cwd?: string;
}

export function resolveConfigFile(options: Pick<LoadOptions, 'configFile' | 'env' | 'cwd'>): string {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  return path.resolve(cwd, options.configFile ?? env['NEURON_CONFIG'] ?? DEFAULT_CONFIG_FILE);
}

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = resolveConfigFile(options);
  const explicit = options.configFile !== undefined || env['NEURON_CONFIG'] !== undefined;
  const problems: ConfigProblem[] = [];

  let fromFile: Record<string, unknown> = {};
  let configFile: string | null = null;
  if (existsSync(file)) {
    configFile = file;
    const parsed = readJsonObject(file, problems);
    if (parsed) fromFile = parsed;
  } else if (explicit) {
    throw new ConfigError([{ path: '', message: `config file ${file} does not exist; create one with \`neuron init\`` }], file);
  }

  const merged = structuredClone(fromFile);
  // Which layer set each overridden path, so that a problem names where its value came from.
  const sources = new Map<string, string>();
  for (const [dotted, value] of Object.entries(environmentOverrides(env, problems))) {
    setPath(merged, dotted, value);
    sources.set(dotted, `environment variable ${environmentNameOf(dotted, env)}`);
  }
  for (const [dotted, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    const source = options.overrideSources?.[dotted] ?? `flag --set ${dotted}`;
    setPath(merged, dotted, coerceForPath(dotted, value, problems, source));
    sources.set(dotted, source);
  }

  // Fills in the defaults in place while checking, and reports every problem.
  const withDefaults: unknown = merged;
  problems.push(...schemaProblems(withDefaults));
  if (problems.length === 0) problems.push(...semanticProblems(withDefaults as NeuronConfig));
  if (problems.length > 0) {
    const attributed = problems.map((problem) => attributeProblem(problem, sources, configFile, fromFile));
    throw new ConfigError(attributed, describeSources(attributed, configFile));
  }
  const config = withDefaults as NeuronConfig;

  const baseDir = configFile ? path.dirname(configFile) : cwd;
  const dataDir = path.resolve(baseDir, config.data_dir);
  return {
    config,
    paths: {
      configFile,
      baseDir,
      dataDir,
      sqliteFile: path.resolve(dataDir, config.storage.sqlite_file),
      pidFile: path.join(dataDir, 'neuron.pid'),
    },
  };
}

/** The environment variable that set `dotted` (NEURON_SERVER__PORT for server.port). */
function environmentNameOf(dotted: string, env: NodeJS.ProcessEnv): string {
  const expected = `${ENV_PREFIX}${dotted
    .split('.')
    .map((part) => part.toUpperCase())
    .join('__')}`;
  return Object.keys(env).find((name) => name.toUpperCase() === expected) ?? expected;
}

/**
 * Names the layer a problem's value came from: the flag or environment variable that set its path
 * (or a parent of it), else the config file when the file holds that path, else the defaults.
 * Problems that already name their source (unknown variables, bad JSON) keep their message as is.
 */
function attributeProblem(
  problem: ConfigProblem,
  sources: Map<string, string>,
  configFile: string | null,
  fromFile: Record<string, unknown>,
): ConfigProblem {
  if (problem.source !== undefined || problem.message.includes('(from ')) return problem;
  let best: string | undefined;
  for (const dotted of sources.keys()) {
    const covers = problem.path === dotted || problem.path.startsWith(`${dotted}.`);
    if (covers && (best === undefined || dotted.length > best.length)) best = dotted;
  }
  if (best !== undefined) return { ...problem, source: sources.get(best)! };
  if (configFile !== null && (problem.path === '' || hasPath(fromFile, problem.path))) return { ...problem, source: configFile };
  return problem;
}

function hasPath(target: Record<string, unknown>, dotted: string): boolean {
  let node: unknown = target;
  for (const part of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || !(part in node)) return false;
    node = (node as Record<string, unknown>)[part];
  }
  return true;
}

/** The heading of a refused configuration: every layer that holds a problem. */
function describeSources(problems: ConfigProblem[], configFile: string | null): string {
  const named = [...new Set(problems.map((problem) => problem.source).filter((source) => source !== undefined))];
  if (named.length > 0) return named.join(', ');
  return configFile ?? 'defaults and environment';
}

/**
 * Checks `value` against the config schema with ajv (which fastify loads anyway), filling in every
 * default in place. The validator is compiled for this one call and dropped with it: the config
 * is loaded once per process, and keeping a compiled validator of every option, or loading
 * TypeBox's own value checker, would hold memory for the life of the Neuron for nothing.
 */
function schemaProblems(value: unknown): ConfigProblem[] {
  // verbose: errors carry their schema, which names a union's allowed values (messages never
  // quote the value). validateSchema: false: the schema is ours and fixed, so checking it against
  // the JSON Schema meta-schema on every load is wasted work; strict mode still refuses an unknown
  // keyword (x-secret, which marks secrets for redaction, is declared).
  const ajv = new Ajv({ useDefaults: true, allErrors: true, coerceTypes: false, validateSchema: false, verbose: true });
  ajv.addKeyword({ keyword: 'x-secret' });
  const validate = ajv.compile(ConfigSchema);
  if (validate(value)) return [];
  const problems: ConfigProblem[] = [];
  // A value outside a list of literals fails every branch of the union: one problem naming the
  // allowed values instead of one per branch (the branches' own errors are at the same path).
  const unions = new Set<string>();
  for (const error of validate.errors ?? []) if (error.keyword === 'anyOf') unions.add(error.instancePath);
  for (const error of validate.errors ?? []) {
    const at = pointerToPath(error.instancePath);
    if (error.keyword === 'additionalProperties') {
      const name = (error.params as { additionalProperty: string }).additionalProperty;
      problems.push({ path: joinPath(at, name), message: 'unknown option (check the spelling against docs/configuration.md)' });
    } else if (error.keyword === 'anyOf') {
      problems.push({ path: at, message: unionMessage(error) });
    } else if (!(unions.has(error.instancePath) && error.schemaPath.includes('/anyOf/'))) {
      problems.push({ path: at, message: error.message ?? 'is not valid' });
    }
  }
  return problems;
}

/** "must be one of: a, b, c" for a union of literals; ajv's own message otherwise. */
function unionMessage(error: ErrorObject): string {
  const branches = (error.parentSchema as { anyOf?: Array<{ const?: unknown }> } | undefined)?.anyOf ?? [];
  if (branches.length > 0 && branches.every((branch) => branch.const !== undefined)) {
    return `must be one of: ${branches.map((branch) => String(branch.const)).join(', ')}`;
  }
  return error.message ?? 'is not valid';
}

/** Checks the schema cannot express: NPI check digits, URLs, pairs of options. */
function semanticProblems(config: NeuronConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!isValidNpi(config.organization.npi)) problems.push({ path: 'organization.npi', message: `not a valid NPI: ${NPI_RULE}` });
  const seen = new Set<string>();
  config.providers.forEach((provider, index) => {
    const at = `providers.${index}`;
    if (!isValidNpi(provider.npi)) problems.push({ path: `${at}.npi`, message: `not a valid NPI: ${NPI_RULE}` });
    if (seen.has(provider.npi)) problems.push({ path: `${at}.npi`, message: 'listed twice' });
    seen.add(provider.npi);
    if (!isUrl(provider.provider_endpoint, ['http:', 'https:', 'ws:', 'wss:'])) {
      problems.push({ path: `${at}.provider_endpoint`, message: 'must be an http(s) or ws(s) URL' });
    }
    if (provider.notification_url !== undefined && !isUrl(provider.notification_url, ['http:', 'https:'])) {
      problems.push({ path: `${at}.notification_url`, message: 'must be an http(s) URL' });
    }
  });
  if (config.server.public_url !== '' && !isUrl(config.server.public_url, ['http:', 'https:'])) {
    problems.push({ path: 'server.public_url', message: 'must be an http(s) URL such as https://neuron.example.org' });
  }
  const tls = config.server.tls;
  if ((tls.cert_file === '') !== (tls.key_file === '')) {
    problems.push({ path: 'server.tls', message: 'set both cert_file and key_file, or neither' });
  }
  if (config.registry.enabled && !isUrl(config.registry.url, ['http:', 'https:'])) {
    problems.push({ path: 'registry.url', message: "registry.enabled is true, so registry.url must be the registry's http(s) URL" });
  }
  if (config.registry.backoff_initial_ms > config.registry.backoff_max_ms) {
    problems.push({ path: 'registry.backoff_initial_ms', message: 'must not exceed registry.backoff_max_ms' });
  }
  if (config.outbox.backoff_initial_ms > config.outbox.backoff_max_ms) {
    problems.push({ path: 'outbox.backoff_initial_ms', message: 'must not exceed outbox.backoff_max_ms' });
  }
  if (config.api.page_size_default > config.api.page_size_max) {
    problems.push({ path: 'api.page_size_default', message: 'must not exceed api.page_size_max' });
  }
  if (config.storage.url !== '' && !/^postgres(ql)?:\/\//.test(config.storage.url)) {
    problems.push({ path: 'storage.url', message: 'must be empty (embedded SQLite) or a postgres:// URL' });
  }
  config.server.trusted_proxies.forEach((entry, index) => {
    const problem = trustedProxyProblem(entry);
    if (problem !== null) problems.push({ path: `server.trusted_proxies.${index}`, message: problem });
  });
  for (const origin of config.api.cors_origins) {
    if (!isUrl(origin, ['http:', 'https:'])) problems.push({ path: 'api.cors_origins', message: `not an http(s) origin: ${origin}` });
  }
  const scrypt = config.console.scrypt;
  if ((scrypt.n & (scrypt.n - 1)) !== 0)
    problems.push({ path: 'console.scrypt.n', message: 'must be a power of two (for example 16384, 32768, 65536)' });
  // scrypt needs 128 * N * r bytes per hash; more than 1 GiB would starve a small machine.
  if (128 * scrypt.n * scrypt.r > 1024 * 1024 * 1024)
    problems.push({
      path: 'console.scrypt.n',
      message: 'console.scrypt.n * console.scrypt.r needs more than 1 GiB per hash; lower one of them',
    });
  if (config.console.session_idle_ms > config.console.session_absolute_ms) {
    problems.push({ path: 'console.session_idle_ms', message: 'must not exceed console.session_absolute_ms' });
  }
  const outbound = outboundSettingsProblems(config.outbound);
  problems.push(...outbound);
  if (outbound.length === 0) {
    // Seeded notification URLs meet the same outbound policy as those sent over the API.
    const policy = new OutboundPolicy(config.outbound);
    config.providers.forEach((provider, index) => {
      const refusal = provider.notification_url === undefined ? null : policy.urlProblem(provider.notification_url);
      if (refusal !== null)
        problems.push({ path: `providers.${index}.notification_url`, message: `is refused by the outbound policy: it ${refusal}` });
    });
  }
  return problems;
}

function isUrl(value: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

function readJsonObject(file: string, problems: ConfigProblem[]): Record<string, unknown> | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push({ path: '', message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unknown error'}` });
    return null;
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      problems.push({ path: '', message: 'the config file must hold one JSON object' });
      return null;
    }
    return value as Record<string, unknown>;
  } catch (error) {
    problems.push({
      path: '',
      message: `${file} is not valid JSON (${(error as Error).message}); fix the syntax or recreate it with \`neuron init --force\``,
    });
    return null;
  }
}

/** NEURON_SERVER__PORT=9000 becomes { 'server.port': 9000 }, typed by the schema. */
function environmentOverrides(env: NodeJS.ProcessEnv, problems: ConfigProblem[]): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || RESERVED_ENV.has(name) || name.startsWith(RESERVED_ENV_PREFIX) || raw === undefined) continue;
    const dotted = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((part) => part.toLowerCase())
      .join('.');
    const schema = schemaAt(dotted);
    if (!schema) {
      problems.push({ path: dotted, message: `unknown option (from environment variable ${name})` });
      continue;
    }
    overrides[dotted] = coerceForPath(dotted, raw, problems, `environment variable ${name}`);
  }
  return overrides;
}

function schemaAt(dotted: string): Record<string, unknown> | null {
  let node = ConfigSchema as unknown as Record<string, unknown>;
  for (const part of dotted.split('.')) {
    const properties = node['properties'] as Record<string, Record<string, unknown>> | undefined;
    const next = properties?.[part];
    if (!next) return null;
    node = next;
  }
  return node;
}

/** Strings from the environment or flags become the type the schema expects at that path. */
function coerceForPath(dotted: string, value: unknown, problems: ConfigProblem[], source: string): unknown {
  if (typeof value !== 'string') return value;
  const schema = schemaAt(dotted);
  if (!schema) {
    problems.push({ path: dotted, message: `unknown option (from ${source})` });
    return value;
  }
  switch (schema['type']) {
    case 'integer':
    case 'number': {
      const number = Number(value);
      return value.trim() === '' || !Number.isFinite(number) ? value : number;
    }
    case 'boolean':
      if (['true', '1', 'yes'].includes(value.toLowerCase())) return true;
      if (['false', '0', 'no'].includes(value.toLowerCase())) return false;
      return value;
    case 'array':
    case 'object':
      if (value.trim().startsWith('[') || value.trim().startsWith('{')) {
        try {
          return JSON.parse(value);
        } catch {
          problems.push({ path: dotted, message: `${source} is not valid JSON` });
          return value;
        }
      }
      return schema['type'] === 'array'
        ? value
            .split(',')
            .map((item) => item.trim())
            .filter(Boolean)
        : value;
    default:
      return value;
  }
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .join('.');
}

function joinPath(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

/** The effective config with every secret replaced, for `neuron config --print` and logs. */
export function redactConfig(config: NeuronConfig): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const dotted of secretPaths()) {
    const parts = dotted.split('.');
    let node: Record<string, unknown> | undefined = copy;
    for (const part of parts.slice(0, -1)) node = node?.[part] as Record<string, unknown> | undefined;
    const last = parts[parts.length - 1]!;
    if (node && typeof node[last] === 'string' && node[last] !== '') node[last] = '[redacted]';
  }
  return copy;
}
