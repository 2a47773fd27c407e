/**
 * Test support for the provider and outbox tests: a real HTTP server on 127.0.0.1 playing a
 * provider CareAgent's notification endpoint (or a webhook receiver), API keys, and patient
 * handshakes through the real client. Not imported by the server.
 */
import { afterEach } from 'node:test';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiKeyService } from '../../src/domains/api-keys/service.ts';
import type { Scope } from '../../src/foundation/rest/principal.ts';
import {
  createConsentToken,
  establishRelationship,
  type ConsentDialect,
  type EstablishOptions,
  type RelationshipResult,
} from 'neuron-careagent-client';
import { newPatient, type Patient } from './raw-handshake.ts';
import type { Neuron } from '../../src/main.ts';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as received. */
  body: string;
  /** The status this receiver answered, or null while it has not answered (hanging). */
  answered: number | null;
}

/** What to do with the n-th request (from 0): answer a status (with headers), or never answer. */
export type Behaviour = (
  index: number,
  request: ReceivedRequest,
) => { status: number; headers?: Record<string, string>; delayMs?: number } | 'hang';

export interface Receiver {
  /** Base URL, http://127.0.0.1:<port> */
  url: string;
  requests: ReceivedRequest[];
  behave(behaviour: Behaviour): void;
  /** Requests this receiver answered with a 2xx. */
  accepted(): ReceivedRequest[];
  close(): Promise<void>;
}

export async function startReceiver(behaviour: Behaviour = () => ({ status: 204 })): Promise<Receiver> {
  let current = behaviour;
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        answered: null,
      };
      const index = requests.length;
      requests.push(received);
      const action = current(index, received);
      if (action === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      const answer = (): void => {
        received.answered = action.status;
        res.writeHead(action.status, action.headers ?? {});
        res.end();
      };
      if (action.delayMs) setTimeout(answer, action.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    behave(next) {
      current = next;
    },
    accepted: () => requests.filter((r) => r.answered !== null && r.answered >= 200 && r.answered < 300),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An API key with these scopes, made through the real key service. */
export async function createApiKey(neuron: Neuron, scopes: Scope[], label = `test-${scopes.join('-')}`): Promise<string> {
  const service = new ApiKeyService({ storage: neuron.storage, audit: neuron.audit });
  const { key } = await service.create({ label, scopes, expiresAt: null, actor: 'cli' });
  return key;
}

/** What establishAs passes on to establishRelationship, besides the patient and its consent. */
export type EstablishExtras = Omit<EstablishOptions, 'patientAgentId' | 'keys' | 'endpoint' | 'consentToken'>;

/**
 * `patient` completes a real handshake (the client library) with provider `providerNpi` of the
 * Neuron at `handshakeUrl`, with a fresh consent token for `consent.actions` (office_visit unless
 * given) in `consent.dialect` (A unless given); `extras` go to establishRelationship as they are.
 */
export function establishAs(
  handshakeUrl: string,
  patient: Patient,
  providerNpi: string,
  extras: EstablishExtras = {},
  consent: { actions?: string[]; dialect?: ConsentDialect } = {},
): Promise<RelationshipResult> {
  const consentToken = createConsentToken(
    { patientAgentId: patient.agentId, providerNpi, consentedActions: consent.actions ?? ['office_visit'] },
    patient.keys,
    consent.dialect ?? 'A',
  );
  return establishRelationship(handshakeUrl, {
    patientAgentId: patient.agentId,
    keys: patient.keys,
    endpoint: patient.endpoint,
    consentToken,
    ...extras,
  });
}

let patientCounter = 0;

/** A new patient CareAgent completing a real handshake with a provider of this Neuron. */
export async function connectPatient(
  handshakeUrl: string,
  providerNpi: string,
  actions: string[] = ['office_visit', 'lab_results'],
  label = 'patient',
): Promise<RelationshipResult & { patientAgentId: string }> {
  patientCounter += 1;
  const patient = newPatient(`${label}-${process.pid}-${patientCounter}`);
  return { ...(await establishAs(handshakeUrl, patient, providerNpi, {}, { actions })), patientAgentId: patient.agentId };
}

/** JSON request helper against a test Neuron. */
export async function api(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers['authorization'] = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
}

/** Outbox settings small enough that retries happen within a test; margins stay generous. */
export const FAST_OUTBOX = {
  poll_interval_ms: 20,
  backoff_initial_ms: 20,
  backoff_max_ms: 200,
  request_timeout_ms: 10_000,
  lease_ms: 100,
  max_attempts: 12,
};

/** A provider entry for the config's `providers` seed list, optionally with a notification URL. */
export function providerSeed(npi: string, notificationUrl?: string): Record<string, unknown> {
  return {
    npi,
    name: `Dr. Test ${npi.slice(-4)}`,
    provider_endpoint: `wss://provider-${npi}.example/agent`,
    ...(notificationUrl ? { notification_url: notificationUrl } : {}),
  };
}

/**
 * Registers an afterEach in the calling test file and returns `defer`: what is deferred during a
 * test (closing receivers, stopping Neurons) runs after it, newest first; a failing cleanup is
 * ignored so it never hides the test's own result.
 */
export function cleanupAfterEach(): (cleanup: () => Promise<unknown>) => void {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  });
  return (cleanup) => {
    cleanups.push(cleanup);
  };
}

/** startReceiver, closed after the test through `defer` (from cleanupAfterEach). */
export async function deferredReceiver(defer: (cleanup: () => Promise<unknown>) => void, behaviour?: Behaviour): Promise<Receiver> {
  const receiver = await startReceiver(behaviour);
  defer(() => receiver.close());
  return receiver;
}
