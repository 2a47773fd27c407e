import type { Command } from 'commander';
import { redactConfig } from '../../foundation/config/index.ts';
import { globalOptions, loadForCli } from '../context.ts';
import { CliError, EXIT, out, printJson } from '../output.ts';

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('show or check the effective configuration (defaults < file < NEURON_* env < flags)')
    .option('--print', 'print the effective configuration as JSON, secrets redacted')
    .option('--check', 'only validate; exit 0 when valid, 2 with every problem listed when not')
    .action(async (options: { print?: boolean; check?: boolean }, command: Command) => {
      const loaded = loadForCli(globalOptions(command));
      if (options.print) printJson(redactConfig(loaded.config));
      else if (options.check) out(`configuration is valid (${loaded.paths.configFile ?? 'defaults and environment'})`);
      else throw new CliError('say --print or --check', EXIT.USAGE);
    });
}
