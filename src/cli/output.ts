/**
 * CLI output: coloured for people on a terminal (unless NO_COLOR is set), plain JSON for scripts.
 * Errors go to stderr with the remedy; exit codes are documented in docs/cli.md.
 */
import { styleText } from 'node:util';

export const EXIT = {
  OK: 0,
  /** Something failed at run time (port in use, database unreadable, registry refused, …). */
  FAILURE: 1,
  /** The command line or the configuration is invalid; nothing was started or changed. */
  USAGE: 2,
  /** The Neuron is not running (status, stop). */
  NOT_RUNNING: 3,
  /** The audit log did not verify (`audit verify`) or the monitor found a fork, a truncation or a bad signature: the same 1 as any failure (issue 13). */
  AUDIT_FAILED: 1,
} as const;

type Style = Parameters<typeof styleText>[0];

export function colours(stream: NodeJS.WriteStream = process.stdout): (style: Style, text: string) => string {
  const enabled = stream.isTTY === true && process.env['NO_COLOR'] === undefined;
  return (style, text) => (enabled ? styleText(style, text) : text);
}

export const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

export const err = (line: string): void => {
  process.stderr.write(`${colours(process.stderr)('red', 'error')}: ${line}\n`);
};

export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

/** An error that ends the command with a message for the operator and a documented exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
