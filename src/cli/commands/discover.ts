/**
 * `neuron discover`: lists the Neurons advertising on the local network over mDNS/DNS-SD
 * (docs/discovery.md). Needs no configuration and no database; everything it prints comes from
 * the network and is unauthenticated.
 */
import type { Command } from 'commander';
import { DEFAULT_BROWSE_TIMEOUT_MS, MAX_BROWSE_TIMEOUT_MS, formatDiscoveredNeurons } from '../../network/discovery/index.ts';
import { isNeuronError } from '../../foundation/errors/index.ts';
import { parseDuration } from '../context.ts';
import { CliError, EXIT, out, printJson } from '../output.ts';

export function registerDiscover(program: Command): void {
  program
    .command('discover')
    .description('list the Neurons on the local network (mDNS); found entries are unauthenticated')
    .option('--timeout <duration>', `how long to listen, at most ${MAX_BROWSE_TIMEOUT_MS / 1000}s`, `${DEFAULT_BROWSE_TIMEOUT_MS / 1000}s`)
    .option('--interface <name>', 'ask on this network interface only (name like eth0, or its IPv4 address)')
    .option('--json', 'machine-readable output')
    .action(async (options: { timeout: string; interface?: string; json?: boolean }) => {
      const timeoutMs = parseDuration(options.timeout);
      if (!(timeoutMs > 0 && timeoutMs <= MAX_BROWSE_TIMEOUT_MS)) {
        throw new CliError(`--timeout must be more than 0 and at most ${MAX_BROWSE_TIMEOUT_MS / 1000}s`, EXIT.USAGE);
      }
      // Loaded here: the server, which shares this command line, never browses.
      const { browseNeurons } = await import('../../network/discovery/browser.ts');
      let found: Awaited<ReturnType<typeof browseNeurons>>;
      try {
        found = await browseNeurons({ timeoutMs, ...(options.interface === undefined ? {} : { interface: options.interface }) });
      } catch (error) {
        if (isNeuronError(error) && error.code === 'VALIDATION_FAILED') {
          const detail = error.errors?.map((problem) => problem.message).join('; ') ?? error.message;
          throw new CliError(detail, EXIT.USAGE);
        }
        throw new CliError(
          `cannot browse the local network: ${(error as Error).message}; check that UDP port 5353 is not held exclusively by another program and that multicast is allowed`,
        );
      }
      if (options.json) printJson(found);
      else out(formatDiscoveredNeurons(found));
    });
}
