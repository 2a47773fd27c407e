/**
 * What the stress phases share: a Neuron process on a fresh data directory with one active
 * provider, memory sampling of that process, patients from the client library, percentiles.
 */
import { rmSync } from 'node:fs';
import WebSocket from 'ws';
import {
  createConsentToken,
  establishRelationship,
  generatePatientKeys,
  type PatientKeys,
  type RelationshipResult,
} from 'neuron-careagent-client';
import { memoryKb, startNeuronProcess, stopNeuronProcess, writeNeuronConfig, type NeuronProcess } from '../test/hardening/process.ts';

export const PROVIDER_NPI = '1679576722';

export interface StressServer {
  neuron: NeuronProcess;
  dir: string;
  configFile: string;
  sqliteFile: string;
  /**
   * A full garbage collection in the Neuron (through its inspector, on loopback; only when started
   * with `inspect`), then its heap in use and RSS: what memory the Neuron still holds, as opposed
   * to what V8 has not yet bothered to collect.
   */
  collectGarbage(): Promise<{ heapUsedKb: number; rssKb: number }>;
  stop(): Promise<void>;
}

/** Sends inspector protocol commands in order and resolves with their results. */
function inspect(url: string, methods: string[]): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const results: Array<Record<string, unknown>> = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('the inspector did not answer'));
    }, 30_000);
    ws.on('open', () => ws.send(JSON.stringify({ id: 0, method: methods[0] })));
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: Record<string, unknown> };
      if (message.id === undefined) return;
      results.push(message.result ?? {});
      if (results.length === methods.length) {
        clearTimeout(timer);
        ws.close();
        resolve(results);
      } else ws.send(JSON.stringify({ id: results.length, method: methods[results.length] }));
    });
    ws.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * A Neuron process (`node bin/neuron.js start`) with `config` over the stress defaults and one
 * active provider. `inspect` opens Node's inspector on a loopback port so the stress run can ask
 * for a garbage collection before reading memory.
 */
/** handshake.max_pending_per_address when every client shares the loopback address (its maximum). */
export const ONE_ADDRESS_FOR_EVERYONE = 1_000_000;

export async function startServer(config: Record<string, unknown>, options: { inspect?: boolean } = {}): Promise<StressServer> {
  const { dir, configFile, dataDir } = writeNeuronConfig({
    providers: [
      {
        npi: PROVIDER_NPI,
        name: 'Dr. Stress',
        provider_types: ['physician'],
        provider_endpoint: 'wss://provider-stress.example/agent',
        status: 'active',
      },
    ],
    ...config,
    // Every stress client connects from 127.0.0.1, one address standing for thousands of patients,
    // so the per-address cap is lifted; the queue, the ceiling and the deadlines are what is stressed.
    handshake: { max_pending_per_address: ONE_ADDRESS_FOR_EVERYONE, ...(config['handshake'] as Record<string, unknown> | undefined) },
  });
  const neuron = await startNeuronProcess(
    configFile,
    dataDir,
    options.inspect ? { env: { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --inspect=127.0.0.1:0`.trim() } } : {},
  );
  const inspector = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/.exec(neuron.output())?.[1];
  return {
    neuron,
    dir,
    configFile,
    sqliteFile: `${dataDir}/neuron.sqlite`,
    async collectGarbage() {
      if (inspector === undefined) throw new Error('the Neuron was not started with its inspector open');
      const [, usage] = await inspect(inspector, ['HeapProfiler.collectGarbage', 'Runtime.getHeapUsage']);
      return { heapUsedKb: Number(usage!['usedSize']) / 1024, rssKb: memoryKb(neuron.pid).rss };
    },
    async stop() {
      const code = await stopNeuronProcess(neuron);
      if (code !== 0) process.stderr.write(`[stress] the Neuron stopped with exit code ${code}\n${neuron.output().slice(-4_000)}\n`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Samples a process's RSS every `intervalMs` until stopped; keeps the peak. */
export class RssSampler {
  peakKb = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #pid: number;

  constructor(pid: number) {
    this.#pid = pid;
  }
  now(): number {
    const { rss } = memoryKb(this.#pid);
    this.peakKb = Math.max(this.peakKb, rss);
    return rss;
  }
  start(intervalMs = 100): void {
    this.peakKb = this.now();
    this.#timer = setInterval(() => {
      try {
        this.now();
      } catch {
        // the process is gone; the phase will notice
      }
    }, intervalMs);
  }
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}

export interface Patient {
  agentId: string;
  keys: PatientKeys;
}

let patients = 0;
export function newPatient(label: string): Patient {
  patients += 1;
  return { agentId: `stress-${label}-${process.pid}-${patients}`, keys: generatePatientKeys() };
}

export function handshake(url: string, patient: Patient, timeoutMs = 60_000): Promise<RelationshipResult> {
  const consentToken = createConsentToken(
    { patientAgentId: patient.agentId, providerNpi: PROVIDER_NPI, consentedActions: ['office_visit'] },
    patient.keys,
  );
  return establishRelationship(url, {
    patientAgentId: patient.agentId,
    keys: patient.keys,
    endpoint: `wss://${patient.agentId}.patients.example/agent`,
    consentToken,
    timeoutMs,
  });
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const mb = (kb: number): string => (kb / 1024).toFixed(0);

/** Heap in use after a full collection: "near baseline" means within this much of where it started. */
export const HEAP_SLACK_KB = 8 * 1024;

export interface Memory {
  /** RSS of the serving Neuron before the load, at the load's peak, and after it (after a full GC). */
  rssKb: { baseline: number; peak: number; after: number };
  /** V8 heap in use after a full GC, before and after the load. */
  heapKb: { baseline: number; after: number };
}
export const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : 'n/a');

export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}
