/**
 * Several Neuron processes on one PostgreSQL database, for the multi-instance suite: a fresh
 * database per cluster (CREATE DATABASE on the admin connection, dropped afterwards), each
 * instance its own operating-system process (`node bin/neuron.js start`, through the hardening
 * suite's process helper) with its own data directory and port, all with the same storage.url
 * and organization; a provider stub (a real HTTP server on 127.0.0.1) that records every notice
 * posted to it; and the patient client library driving handshakes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  createConsentToken,
  establishRelationship,
  generatePatientKeys,
  type PatientKeys,
  type RelationshipResult,
} from 'neuron-careagent-client';
import { HEADER, verifyProviderNotice } from '../../src/domains/outbox/signing.ts';
import { killHard, startNeuronProcess, stopNeuronProcess, writeNeuronConfig, type NeuronProcess } from '../hardening/process.ts';

export const ORGANIZATION = { name: 'Synthetic Multi-Site Practice', npi: '1245319599' };
export const PROVIDER_NPI = '1679576722';
/** Generous: a loaded two-core machine runs two Neurons, PostgreSQL and the client at once. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------- the database

export interface FreshDatabase {
  /** storage.url of the new database (same server, role and password as the base URL). */
  url: string;
  name: string;
  /** A small pool of the test's own on the new database, for assertions. */
  pool: pg.Pool;
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

async function admin(baseUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** A new, empty database on the server of `baseUrl`, named after this process. */
export async function createFreshDatabase(baseUrl: string): Promise<FreshDatabase> {
  // Unquoted identifiers: lower-case letters, digits and underscores only.
  const name = `neuron_mi_${process.pid}_${randomBytes(5).toString('hex')}`;
  await admin(baseUrl, `CREATE DATABASE ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  // An idle connection dropped by the server (it should not be) must not crash the test process.
  pool.on('error', () => undefined);
  let dropped = false;
  return {
    url: url.toString(),
    name,
    pool,
    async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
      return (await pool.query<R>(text, values)).rows;
    },
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end();
      // FORCE (PostgreSQL 13+) ends the connections of an instance that was killed or is still closing.
      await admin(baseUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

// ---------------------------------------------------------------- the provider stub

export interface ReceivedNotice {
  eventId: string;
  /** event_id inside the signed body: must equal the header. */
  bodyEventId: string | undefined;
  relationshipId: string | undefined;
  patientAgentId: string | undefined;
  signatureValid: boolean;
  /** The public key the sender named (Neuron-Public-Key): every instance must sign with the same. */
  senderKey: string | undefined;
  attempt: number;
  /** Whether the stub's 200 was written completely (false when the sender went away first). */
  answered: boolean;
}

export interface ProviderStub {
  url: string;
  notices: ReceivedNotice[];
  /** Delays every answer by `ms` (deliveries then stay in flight, as with a slow receiver). */
  setDelay(ms: number): void;
  /** Set once the organization key is known; signatures are checked against it. */
  trustKey(publicKey: string): void;
  /** Every distinct event id received. */
  eventIds(): Set<string>;
  /** Event ids received more than once, with their counts. */
  duplicates(): Map<string, number>;
  close(): Promise<void>;
}

/** Largest body the stub reads: a notice is a few KiB. */
const STUB_MAX_BODY_BYTES = 256 * 1024;

export async function startProviderStub(): Promise<ProviderStub> {
  const notices: ReceivedNotice[] = [];
  let delayMs = 0;
  let trusted: string | null = null;
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > STUB_MAX_BODY_BYTES) {
        response.writeHead(413).end();
        return;
      }
      chunks.push(chunk as Buffer);
    }
    const raw = Buffer.concat(chunks);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      // Recorded with empty fields below; the assertions then fail on it.
    }
    const header = (name: string): string | undefined => {
      const value = request.headers[name.toLowerCase()];
      return Array.isArray(value) ? value[0] : value;
    };
    const notice: ReceivedNotice = {
      eventId: header(HEADER.eventId) ?? '',
      bodyEventId: typeof body['event_id'] === 'string' ? body['event_id'] : undefined,
      relationshipId: typeof body['relationship_id'] === 'string' ? body['relationship_id'] : undefined,
      patientAgentId: typeof body['patient_agent_id'] === 'string' ? body['patient_agent_id'] : undefined,
      signatureValid: trusted !== null && verifyProviderNotice(raw, header(HEADER.signature), trusted),
      senderKey: header(HEADER.publicKey),
      attempt: Number(header(HEADER.attempt) ?? NaN),
      answered: false,
    };
    notices.push(notice);
    if (delayMs > 0) await sleep(delayMs);
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    response.end('ok', () => {
      notice.answered = true;
    });
  };
  const server: Server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/careagent/notices`,
    notices,
    setDelay(ms) {
      delayMs = ms;
    },
    trustKey(publicKey) {
      trusted = publicKey;
    },
    eventIds() {
      return new Set(notices.map((n) => n.eventId));
    },
    duplicates() {
      const counts = new Map<string, number>();
      for (const notice of notices) counts.set(notice.eventId, (counts.get(notice.eventId) ?? 0) + 1);
      return new Map([...counts].filter(([, n]) => n > 1));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------- the instances

export interface Instance {
  name: string;
  process: NeuronProcess;
  /** The Neuron's instance id (outbox lease holder, leader election), from its PID file. */
  instanceId: string;
  url: string;
  handshakeUrl: string;
  configFile: string;
  dir: string;
  alive: boolean;
  /** SIGKILL: nothing is flushed, no shutdown hook runs. */
  kill(): Promise<void>;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number | null>;
}

/** Test-sized settings every instance shares (the same configuration everywhere, as in production). */
export function instanceConfig(
  storageUrl: string,
  notificationUrl: string | null,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    organization: ORGANIZATION,
    storage: { url: storageUrl, pool_max: 5 },
    outbox: {
      poll_interval_ms: 100,
      // The lease is at least request_timeout_ms + 5 s (src/domains/outbox/worker.ts), so a killed
      // instance's claimed notice is taken over after about 6 s.
      lease_ms: 500,
      request_timeout_ms: 1_000,
      backoff_initial_ms: 100,
      backoff_max_ms: 1_000,
    },
    handshake: { max_concurrent_handshakes: 20 },
    providers:
      notificationUrl === null
        ? []
        : [
            {
              npi: PROVIDER_NPI,
              name: 'Dr. Synthetic Stub',
              provider_endpoint: 'wss://provider-stub.example/agent',
              notification_url: notificationUrl,
              status: 'active',
            },
          ],
    ...extra,
  };
}

/** Starts one Neuron process with `config` in a directory of its own. */
export async function startInstance(name: string, config: Record<string, unknown>): Promise<Instance> {
  const { dir, configFile, dataDir } = writeNeuronConfig(config);
  let child: NeuronProcess;
  try {
    child = await startNeuronProcess(configFile, dataDir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const record = JSON.parse(readFileSync(path.join(dataDir, 'neuron.pid'), 'utf8')) as { instanceId: string };
  const instance: Instance = {
    name,
    process: child,
    instanceId: record.instanceId,
    url: child.url,
    handshakeUrl: child.handshakeUrl,
    configFile,
    dir,
    alive: true,
    async kill() {
      instance.alive = false;
      await killHard(child);
    },
    async stop() {
      instance.alive = false;
      return stopNeuronProcess(child);
    },
  };
  return instance;
}

/** Stops what still runs (SIGTERM), then removes every directory. */
export async function cleanupInstances(instances: Instance[]): Promise<void> {
  await Promise.all(
    instances.map(async (instance) => {
      if (instance.process.child.exitCode === null && instance.process.child.signalCode === null) await instance.stop();
      rmSync(instance.dir, { recursive: true, force: true });
    }),
  );
}

// ---------------------------------------------------------------- patients and handshakes

export interface Patient {
  agentId: string;
  keys: PatientKeys;
  token: { payload: string; signature: string };
}

let patientCounter = 0;

export function makePatient(label: string): Patient {
  patientCounter += 1;
  const agentId = `mi-${label}-${process.pid}-${patientCounter}-${randomBytes(3).toString('hex')}`;
  const keys = generatePatientKeys();
  const token = createConsentToken({ patientAgentId: agentId, providerNpi: PROVIDER_NPI, consentedActions: ['office_visit'] }, keys);
  return { agentId, keys, token };
}

export function handshake(instance: Instance, patient: Patient, expectedNeuronPublicKey?: string): Promise<RelationshipResult> {
  return establishRelationship(instance.handshakeUrl, {
    patientAgentId: patient.agentId,
    keys: patient.keys,
    endpoint: `https://${patient.agentId}.example/agent`,
    consentToken: patient.token,
    timeoutMs: HANDSHAKE_TIMEOUT_MS,
    ...(expectedNeuronPublicKey === undefined ? {} : { expectedNeuronPublicKey }),
  });
}

/** JSON from the Neuron's REST API. */
export async function api(
  instance: Instance,
  method: string,
  route: string,
  key: string | null,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${instance.url}${route}`, {
    method,
    headers: {
      ...(key === null ? {} : { Authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    json = { text };
  }
  return { status: response.status, json };
}
