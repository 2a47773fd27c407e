/**
 * The `neuron` command line as an operator runs it, for the CLI tests: a real process on a config
 * file (through runProcess), and the temporary directory with the smallest config such a test
 * starts from.
 *
 *   const cli = temporaryCliConfig('neuron-block-cli-');
 *   const run = await runNeuronCli(cli.configFile, ['block', 'list', '--json']);
 *   cli.remove();
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess, type ProcessResult } from './run-process.ts';

const BIN = fileURLToPath(new URL('../../bin/neuron.js', import.meta.url));
/**
 * Generous, so that only a hung command hits it: a cold start compiles the sources through tsx on a
 * loaded machine, and `audit verify` may read a crash test's whole log.
 */
const CLI_TIMEOUT_MS = 120_000;

/** Runs `neuron --config <configFile> <args>`; `input` is written to its standard input. */
export function runNeuronCli(configFile: string, args: string[], options: { input?: string } = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [BIN, '--config', configFile, ...args], {
    env: { ...process.env, NO_COLOR: '1' },
    timeoutMs: CLI_TIMEOUT_MS,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}

export interface CliConfig {
  dir: string;
  configFile: string;
  /** Where the Neuron keeps its database; absent until a command writes. */
  dataDir: string;
  /** Removes the directory and everything the commands wrote in it. */
  remove(): void;
}

/** A fresh directory with a config the CLI accepts: SQLite in ./data, discovery off, silent logs. */
export function temporaryCliConfig(prefix = 'neuron-cli-'): CliConfig {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const configFile = path.join(dir, 'neuron.config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      organization: { name: 'CLI Practice', npi: '1245319599' },
      data_dir: './data',
      discovery: { enabled: false },
      logging: { level: 'silent' },
    }),
  );
  return { dir, configFile, dataDir: path.join(dir, 'data'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
