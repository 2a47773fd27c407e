/**
 * The `neuron` command line. Each command lives in ./commands and uses the same services as the
 * server. Exit codes are in ./output.ts and docs/cli.md.
 */
import { Command, CommanderError } from 'commander';
import { NEURON_VERSION } from '../main.ts';
import { CliError, EXIT, err } from './output.ts';
import { registerStart } from './commands/start.ts';
import { registerStop } from './commands/stop.ts';
import { registerStatus } from './commands/status.ts';
import { registerConfig } from './commands/config.ts';
import { registerAudit } from './commands/audit.ts';
import { registerKey } from './commands/key.ts';
import { registerApiKey } from './commands/api-key.ts';
import { registerInit } from './commands/init.ts';
import { registerDemo } from './commands/demo.ts';
import { registerRegistry } from './commands/registry.ts';
import { registerDiscover } from './commands/discover.ts';
import { registerProvider } from './commands/provider.ts';
import { registerOutbox } from './commands/outbox.ts';
import { registerOperator } from './commands/operator.ts';
import { registerBlock } from './commands/block.ts';

/** Gathers every --set into one list, in the order given. */
function collectAssignments(assignment: string, previous: string[]): string[] {
  return [...previous, assignment];
}

export function buildProgram(): Command {
  const program = new Command('neuron')
    .description('Neuron: the organization front door on the CareAgent network')
    .version(NEURON_VERSION)
    .option('-c, --config <file>', 'config file (default ./neuron.config.json or $NEURON_CONFIG)')
    .option('--data-dir <dir>', 'data directory (overrides data_dir)')
    .option('--port <port>', 'listen port (overrides server.port; 0 picks a free port)')
    .option('--host <host>', 'listen address (overrides server.host)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    // One path=value per --set, repeated for more: a variadic option would take the subcommand's
    // name after it as one more value (`neuron --set a=1 status` printed only the usage).
    .option(
      '--set <path=value>',
      'override any option, for example --set handshake.max_queued=500 (repeatable)',
      collectAssignments,
      [] as string[],
    )
    .exitOverride()
    .showHelpAfterError();
  registerInit(program);
  registerStart(program);
  registerStop(program);
  registerStatus(program);
  registerConfig(program);
  registerAudit(program);
  registerKey(program);
  registerRegistry(program);
  registerDiscover(program);
  registerApiKey(program);
  registerProvider(program);
  registerOutbox(program);
  registerOperator(program);
  registerBlock(program);
  registerDemo(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander but successes to the operator.
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (error instanceof CliError) {
      err(error.message);
      return error.exitCode;
    }
    err(`unexpected failure: ${(error as Error).message}`);
    return EXIT.FAILURE;
  }
}
