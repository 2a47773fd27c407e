/**
 * A Neuron as its own operating-system process, the way an operator runs it
 * (`node bin/neuron.js start --config <file>`), for the crash test and the stress run: start it,
 * find it through its PID file, kill it hard (the CLI against its data: test/helpers/cli.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'neuron.js');
/** tsx compiles the sources on the first start; a loaded CI machine can take a while. */
const START_TIMEOUT_MS = 60_000;

export interface NeuronProcess {
  child: ChildProcess;
  pid: number;
  /** http://127.0.0.1:<port> */
  url: string;
  handshakeUrl: string;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  /** Resolves with the exit code (or the signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Writes a config file in a fresh directory (data in `<dir>/data`), returning both paths. */
export function writeNeuronConfig(
  config: Record<string, unknown>,
  directory?: string,
): { dir: string; configFile: string; dataDir: string } {
  const dir = directory ?? mkdtempSync(path.join(tmpdir(), 'neuron-hardening-'));
  const configFile = path.join(dir, 'neuron.config.json');
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        organization: { name: 'Hardening Practice', npi: '1245319599' },
        data_dir: './data',
        server: { host: '127.0.0.1', port: 0 },
        discovery: { enabled: false },
        registry: { enabled: false },
        logging: { level: 'warn', pretty: 'never' },
        // Receivers (provider stubs) listen on 127.0.0.1, which the outbound policy refuses by default.
        outbound: { allow_loopback: true },
        ...config,
      },
      null,
      2,
    ),
  );
  return { dir, configFile, dataDir: path.join(dir, 'data') };
}

function readPid(file: string): { pid: number; url: string; handshakeUrl: string } | null {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown; url?: unknown; handshakeUrl?: unknown };
    return typeof record.pid === 'number' && typeof record.url === 'string' && typeof record.handshakeUrl === 'string'
      ? { pid: record.pid, url: record.url, handshakeUrl: record.handshakeUrl }
      : null;
  } catch {
    return null;
  }
}

/**
 * Starts `neuron start --config <configFile>` and waits until `<dataDir>/neuron.pid` names this
 * process (a PID file left by a killed predecessor names another pid and is ignored).
 */
export async function startNeuronProcess(
  configFile: string,
  dataDir: string,
  options: { env?: Record<string, string> } = {},
): Promise<NeuronProcess> {
  const child = spawn(process.execPath, [BIN, 'start', '--config', configFile], {
    cwd: path.dirname(configFile),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...options.env },
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const pidFile = path.join(dataDir, 'neuron.pid');
  const deadline = Date.now() + START_TIMEOUT_MS;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline && !gone) {
    const record = readPid(pidFile);
    if (record !== null && record.pid === child.pid) {
      return { child, pid: child.pid, url: record.url, handshakeUrl: record.handshakeUrl, output: () => output, exited };
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`the Neuron process did not start (${gone ? 'it exited' : 'timed out'}):\n${output}`);
}

/** SIGKILL: no shutdown hook runs, nothing is flushed; whatever the database committed is all there is. */
export async function killHard(neuron: NeuronProcess): Promise<void> {
  if (neuron.child.exitCode === null && neuron.child.signalCode === null) neuron.child.kill('SIGKILL');
  await neuron.exited;
}

/** SIGTERM and wait for the clean stop; returns the exit code. */
export async function stopNeuronProcess(neuron: NeuronProcess): Promise<number | null> {
  if (neuron.child.exitCode === null && neuron.child.signalCode === null) neuron.child.kill('SIGTERM');
  const { code } = await neuron.exited;
  return code;
}

/** Resident set size and its high-water mark of a process, in KiB (Linux /proc). */
export function memoryKb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}
