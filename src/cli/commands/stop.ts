import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { globalOptions, loadForCli } from '../context.ts';
import { CliError, EXIT, out } from '../output.ts';
import { isAlive, runningInstance } from '../pidfile.ts';

/** Added to the configured shutdown timeout: time for the process to exit after its parts stop. */
const EXIT_GRACE_MS = 5_000;

export function registerStop(program: Command): void {
  program
    .command('stop')
    .description('stop the running Neuron (SIGTERM through its PID file) and wait for a clean exit')
    .action(async (_options: unknown, command: Command) => {
      const loaded = loadForCli(globalOptions(command));
      const running = runningInstance(loaded.paths.pidFile);
      if (!running) throw new CliError(`no Neuron is running for ${loaded.paths.dataDir}`, EXIT.NOT_RUNNING);
      process.kill(running.pid, 'SIGTERM');
      const deadline = Date.now() + loaded.config.server.shutdown_timeout_ms + EXIT_GRACE_MS;
      while (Date.now() < deadline) {
        if (!isAlive(running.pid)) {
          out(`Neuron (pid ${running.pid}) stopped`);
          return;
        }
        await sleep(100);
      }
      throw new CliError(
        `the Neuron (pid ${running.pid}) did not exit in time; it may still be finishing, or kill it with \`kill -9 ${running.pid}\``,
      );
    });
}
