import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { resolveConfigFile } from '../../foundation/config/index.ts';
import { developmentConfig, writeConfigFile } from '../../foundation/config/init.ts';
import { createNeuron, ListenError } from '../../main.ts';
import { StorageError, describeStorageFailure } from '../../foundation/storage/index.ts';
import { countOperators } from '../../domains/operators/store.ts';
import { globalOptions, loadForCli } from '../context.ts';
import { CliError, EXIT, colours, out } from '../output.ts';
import { removePidFile, runningInstance, writePidFile } from '../pidfile.ts';

/**
 * What `start` says to the person at the terminal goes to stderr: stdout is the JSON log stream
 * (journald, a log shipper, `start --daemon`'s log file) and must hold log lines only.
 */
const banner = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** How long `start --daemon` waits for the background process to report that it listens. */
const DAEMON_READY_TIMEOUT_MS = 30_000;

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start the Neuron in the foreground (Ctrl-C or `neuron stop` to stop)')
    .option('--daemon', 'run in the background; logs go to <data_dir>/neuron.log')
    .action(async (options: { daemon?: boolean }, command: Command) => {
      const global = globalOptions(command);
      const paint = colours(process.stderr);
      const configFile = resolveConfigFile({ configFile: global.config });
      if (!existsSync(configFile) && global.config === undefined && process.env['NEURON_CONFIG'] === undefined) {
        writeConfigFile(configFile, developmentConfig());
        banner(`${paint('yellow', 'No configuration found:')} created a development config at ${configFile}`);
        banner(`  organization: Development Practice (synthetic NPI 1245319599), loopback only, registry off`);
        banner(`  edit it or run \`neuron init --force\` for a real setup; see docs/configuration.md`);
      }
      const loaded = loadForCli(global);
      const running = runningInstance(loaded.paths.pidFile);
      if (running)
        throw new CliError(
          `a Neuron is already running for ${loaded.paths.dataDir} (pid ${running.pid}, ${running.url}); stop it with \`neuron stop\``,
        );

      if (options.daemon) return startDaemon(loaded.paths.dataDir, loaded.paths.pidFile);

      const neuron = createNeuron(loaded);
      try {
        await neuron.start();
      } catch (error) {
        if (error instanceof ListenError || error instanceof StorageError) throw new CliError(error.message);
        // A full disk or a damaged file met after opening (the first writes of the start).
        const storageFailure = describeStorageFailure(error, loaded.config.storage.url === '' ? loaded.paths.sqliteFile : 'on PostgreSQL');
        if (storageFailure !== null) throw new CliError(storageFailure.message);
        throw error;
      }
      const { url, handshakeUrl } = neuron.address();
      try {
        writePidFile(loaded.paths.pidFile, {
          pid: process.pid,
          instanceId: neuron.instanceId,
          url,
          handshakeUrl,
          startedAt: new Date().toISOString(),
        });
      } catch (error) {
        // Without its PID file the instance cannot be found by `neuron stop`/`status`: do not keep serving.
        await neuron.stop();
        throw new CliError(`cannot write the PID file ${loaded.paths.pidFile}: ${(error as Error).message}`);
      }
      banner(`${paint('green', 'Neuron running')} for ${loaded.config.organization.name} (NPI ${loaded.config.organization.npi})`);
      banner(`  REST API   ${url}   (health: ${url}/health/ready)`);
      banner(`  handshake  ${handshakeUrl}`);
      banner(`  data       ${loaded.paths.dataDir}`);
      banner(`  config     ${loaded.paths.configFile ?? '(defaults and environment)'}`);
      banner(`  console    ${url}/console`);
      if ((await countOperators(neuron.storage.db)) === 0) {
        banner(
          `${paint('yellow', 'No console operator yet:')} create one with \`npm run neuron -- operator add NAME --role admin\` (in another terminal), then sign in at ${url}/console`,
        );
      }

      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals): void => {
          signals += 1;
          if (signals > 1) {
            neuron.logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
            process.exit(EXIT.FAILURE);
          }
          neuron.logger.info({ signal }, 'shutdown requested');
          neuron.stop().finally(() => {
            removePidFile(loaded.paths.pidFile, process.pid);
            resolve();
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
    });
}

async function startDaemon(dataDir: string, pidFile: string): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(dataDir, 'neuron.log');
  const log = openSync(logFile, 'a', 0o600);
  const args = process.argv.slice(1).filter((arg) => arg !== '--daemon');
  const child = spawn(process.execPath, [...process.execArgv, ...args], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, NEURON_LOGGING__PRETTY: 'never' },
  });
  child.unref();
  const deadline = Date.now() + DAEMON_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const record = runningInstance(pidFile);
    if (record !== null && record.pid === child.pid) {
      out(`Neuron started in the background (pid ${record.pid}) at ${record.url}; logs in ${logFile}`);
      return;
    }
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new CliError(`the background Neuron did not come up; see ${logFile}`);
}
