import { existsSync, renameSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ConfigError, isValidNpi, loadConfig, NPI_RULE, resolveConfigFile } from '../../foundation/config/index.ts';
import { developmentConfig, writeConfigFile, type InitialConfig } from '../../foundation/config/init.ts';
import type { AuditLog } from '../../domains/audit/index.ts';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { globalOptions, openForCli, cliAudit } from '../context.ts';
import { CliError, EXIT, colours, out } from '../output.ts';
import { createLogger } from '../../foundation/observability/logger.ts';
import { handshakeUrlFor } from '../../main.ts';
import { registerOnce } from '../../network/presence/index.ts';
import type { LoadedConfig } from '../../foundation/config/index.ts';
import type { Storage } from '../../foundation/storage/index.ts';

interface InitOptions {
  name?: string;
  npi?: string;
  type?: string;
  port?: string;
  host?: string;
  publicUrl?: string;
  registryUrl?: string;
  force?: boolean;
  yes?: boolean;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a configuration, create the data directory, database and organization key')
    .option('--name <name>', 'organization name')
    .option('--npi <npi>', 'organization NPI (10 digits, Luhn-checked)')
    .option('--type <type>', 'organization type, for example practice, clinic, hospital', 'practice')
    .option('--public-url <url>', 'URL patients reach this Neuron at (https://host:port)')
    .option('--registry-url <url>', 'Axon registry URL; registration happens on start')
    .option('--force', 'replace an existing config file')
    .option('-y, --yes', 'never prompt; take flags and defaults')
    .action(async (options: InitOptions, command: Command) => {
      const global = globalOptions(command);
      const file = resolveConfigFile({ configFile: global.config });
      if (existsSync(file) && !options.force) throw new CliError(`${file} already exists; pass --force to replace it`, EXIT.USAGE);

      const answers = process.stdin.isTTY && !options.yes ? await prompt(options) : options;
      const defaulted = defaultedAnswers(answers);
      const name = answers.name ?? 'Development Practice';
      const npi = answers.npi ?? '1245319599';
      const port = global.port === undefined ? 8600 : Number(global.port);
      const initial: InitialConfig = {
        ...developmentConfig(),
        organization: { name, npi, type: answers.type ?? 'practice' },
        server: {
          host: global.host ?? '127.0.0.1',
          // A port that is not a number is written as given, so the check below names it.
          port: Number.isInteger(port) ? port : (global.port as unknown as number),
          ...(answers.publicUrl ? { public_url: answers.publicUrl } : {}),
        },
        registry: answers.registryUrl ? { enabled: true, url: answers.registryUrl } : { enabled: false, url: '' },
        discovery: { enabled: true },
        ...(global.dataDir ? { data_dir: global.dataDir } : {}),
      };
      const loaded = checkedConfigWrite(file, initial, options.force ?? false);
      if (defaulted.length > 0) {
        process.stderr.write(
          `note: no ${defaulted.map((d) => d.flag).join(' and no ')} given, so the organization has synthetic development values (${defaulted.map((d) => d.value).join(', ')}); fine for trying the Neuron, not for a real organization: \`neuron init --force ${defaulted.map((d) => `${d.flag} …`).join(' ')}\`\n`,
        );
      }
      const storage = await openForCli(loaded, { mustExist: false, migrate: true });
      try {
        const { key, created } = await ensureOrganizationKey(storage.db);
        const audit = cliAudit(storage, key);
        if (created) {
          await audit.record({ type: 'neuron.initialized', actor: 'cli', details: { organization_npi: npi } });
        }
        const paint = colours();
        out(`${paint('green', 'Initialized')} ${name} (NPI ${npi})`);
        out(`  config        ${file}`);
        out(`  data          ${loaded.paths.dataDir}`);
        out(`  database      ${storage.description}`);
        out(`  public key    ${key.publicKey}`);
        const registered = loaded.config.registry.enabled ? await registerAtInit(loaded, storage, audit) : null;
        out(`Next: \`neuron start\`${registered === false ? ' (keeps trying to register with the registry)' : ''}`);
      } finally {
        await storage.close();
      }
    });
}

/** The organization answers left to their synthetic development values. */
function defaultedAnswers(answers: InitOptions): Array<{ flag: string; value: string }> {
  const defaulted: Array<{ flag: string; value: string }> = [];
  if (answers.name === undefined) defaulted.push({ flag: '--name', value: 'name "Development Practice"' });
  if (answers.npi === undefined) defaulted.push({ flag: '--npi', value: 'NPI 1245319599' });
  return defaulted;
}

/** How each option init writes is given on its command line, for problem messages. */
const INIT_FLAG_OF: Record<string, string> = {
  'organization.name': '--name',
  'organization.npi': '--npi',
  'organization.type': '--type',
  'server.public_url': '--public-url',
  'server.port': '--port',
  'server.host': '--host',
  'registry.url': '--registry-url',
  data_dir: '--data-dir',
};

/**
 * Writes `config` to `file` only when the Neuron would accept it: it is written beside the file
 * first, checked there by the same loader the Neuron uses, and only then renamed over `file`. On
 * any problem the candidate is removed and the existing file (with --force) is left untouched.
 */
function checkedConfigWrite(file: string, config: InitialConfig, force: boolean): LoadedConfig {
  const candidate = `${file}.${process.pid}.candidate`;
  writeConfigFile(candidate, config, { force: true });
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig({ configFile: candidate });
  } catch (error) {
    rmSync(candidate, { force: true });
    if (!(error instanceof ConfigError)) throw error;
    const lines = error.problems.map((p) => {
      const flag = INIT_FLAG_OF[p.path];
      const from = p.source !== undefined && p.source !== candidate ? ` (from ${p.source})` : flag ? ` (${flag})` : '';
      return `  - ${p.path || '(root)'}: ${p.message}${from}`;
    });
    throw new CliError(`invalid answers; nothing was written${force ? ' or removed' : ''}:\n${lines.join('\n')}`, EXIT.USAGE);
  }
  if (existsSync(file) && !force) {
    rmSync(candidate, { force: true });
    throw new CliError(`${file} already exists; pass --force to replace it`, EXIT.USAGE);
  }
  renameSync(candidate, file);
  return { ...loaded, paths: { ...loaded.paths, configFile: file } };
}

/**
 * Registers the organization with the configured registry now, so a registry problem shows while
 * the operator is still at the keyboard. True when registered; false when the registry could not
 * be reached in time (`neuron start` keeps trying); a refusal sets exit code 1 with the remedy.
 */
async function registerAtInit(loaded: LoadedConfig, storage: Storage, audit: AuditLog): Promise<boolean> {
  const { config } = loaded;
  const paint = colours();
  if (config.server.public_url === '' && config.server.port === 0) {
    out(
      `  registry      ${paint('yellow', 'not registered yet')}: with port 0 and no server.public_url the handshake URL is known only once started; \`neuron start\` registers`,
    );
    return false;
  }
  const tls = config.server.tls.cert_file !== '';
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const handshakeUrl = handshakeUrlFor(config, `${tls ? 'https' : 'http'}://${host}:${config.server.port}`);
  const status = await registerOnce({
    config,
    storage,
    logger: createLogger({ level: 'silent', pretty: 'never' }),
    audit: (event) => audit.record(event),
    handshakeUrl,
    actor: 'cli',
    // Room for one slow answer plus a few quick retries; beyond that `neuron start` keeps trying.
    deadlineMs: 2 * config.registry.request_timeout_ms,
  });
  if (status.state === 'registered') {
    out(`  registry      ${paint('green', 'registered')} with ${config.registry.url} (registration ${status.registrationId ?? '?'})`);
    out(`  listed at     ${handshakeUrl}`);
    return true;
  }
  if (status.state === 'invalid') {
    out(`  registry      ${paint('red', 'refused')}: ${status.lastError ?? 'unknown error'}`);
    out(`  remedy        ${status.remedy ?? ''}`);
    process.exitCode = EXIT.FAILURE;
    return false;
  }
  out(`  registry      ${paint('yellow', 'not reachable yet')} (${status.lastError ?? 'no answer in time'})`);
  return false;
}

async function prompt(defaults: InitOptions): Promise<InitOptions> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const ask = async (question: string, fallback: string | undefined): Promise<string | undefined> => {
      const answer = (await rl.question(`${question}${fallback ? ` [${fallback}]` : ''}: `)).trim();
      return answer === '' ? fallback : answer;
    };
    const name = await ask('Organization name', defaults.name ?? 'Development Practice');
    let npi = await ask('Organization NPI', defaults.npi ?? '1245319599');
    while (npi !== undefined && !isValidNpi(npi)) {
      out(`  ${npi} is not a valid NPI (${NPI_RULE})`);
      npi = await ask('Organization NPI', undefined);
    }
    const type = await ask('Organization type', defaults.type ?? 'practice');
    const publicUrl = await ask('Public URL patients reach (blank for local only)', defaults.publicUrl);
    const registryUrl = await ask('Axon registry URL (blank to skip)', defaults.registryUrl);
    return { ...defaults, name, npi, type, publicUrl, registryUrl };
  } finally {
    rl.close();
  }
}
