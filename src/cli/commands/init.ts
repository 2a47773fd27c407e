import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { isValidNpi, NPI_RULE, resolveConfigFile } from '../../config/index.ts';
import { developmentConfig, writeConfigFile, type InitialConfig } from '../../config/init.ts';
import { AuditLog } from '../../audit/index.ts';
import { ensureOrganizationKey } from '../../organization/keys.ts';
import { globalOptions, loadForCli, openForCli } from '../context.ts';
import { CliError, EXIT, colours, out } from '../output.ts';
import { createLogger } from '../../observability/logger.ts';

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
      const name = answers.name ?? 'Development Practice';
      const npi = answers.npi ?? '1245319599';
      if (!isValidNpi(npi)) throw new CliError(`--npi ${npi} is not a valid NPI: ${NPI_RULE}`, EXIT.USAGE);
      const initial: InitialConfig = {
        ...developmentConfig(),
        organization: { name, npi, type: answers.type ?? 'practice' },
        server: {
          host: global.host ?? '127.0.0.1',
          port: global.port === undefined ? 8600 : Number(global.port),
          ...(answers.publicUrl ? { public_url: answers.publicUrl } : {}),
        },
        registry: answers.registryUrl ? { enabled: true, url: answers.registryUrl } : { enabled: false, url: '' },
        discovery: { enabled: true },
        ...(global.dataDir ? { data_dir: global.dataDir } : {}),
      };
      writeConfigFile(file, initial, { force: options.force ?? false });
      let loaded;
      try {
        loaded = loadForCli({ config: file });
      } catch (error) {
        // Never leave a config behind that the Neuron itself would refuse.
        const { rmSync } = await import('node:fs');
        rmSync(file, { force: true });
        throw error;
      }
      const storage = await openForCli(loaded, { mustExist: false, migrate: true });
      try {
        const { key, created } = await ensureOrganizationKey(storage.db);
        if (created) {
          const audit = new AuditLog(storage, key, createLogger({ level: 'silent', pretty: 'never' }));
          await audit.record({ type: 'neuron.initialized', actor: 'cli', details: { organization_npi: npi } });
        }
        const paint = colours();
        out(`${paint('green', 'Initialized')} ${name} (NPI ${npi})`);
        out(`  config        ${file}`);
        out(`  data          ${loaded.paths.dataDir}`);
        out(`  database      ${storage.description}`);
        out(`  public key    ${key.publicKey}`);
        out(`Next: \`neuron start\`${answers.registryUrl ? ' (registers with the registry on first start)' : ''}`);
      } finally {
        await storage.close();
      }
    });
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
