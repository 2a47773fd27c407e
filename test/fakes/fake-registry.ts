/**
 * A stand-in for the Axon registry (shared/spec/registry.md) for tests: a real HTTP server on
 * 127.0.0.1 with an ephemeral port, written from the contract alone and sharing no code with the
 * client under test. It records every request it answers and can be switched into faults.
 *
 * Faults (`setFault`):
 * - 'none'         normal behaviour
 * - 'down'         every connection is reset (TCP RST) as it arrives, and open ones are reset
 * - { slow: ms }   every answer is delayed by ms
 * - 'unauthorized' every authenticated call answers 401
 * - 'error500'     every call answers 500
 * - 'oversized'    every answer carries a body over the 1 MB limit
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';

export type Fault = 'none' | 'down' | 'unauthorized' | 'error500' | 'oversized' | { slow: number };

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  /** Parsed JSON body, or the raw text when it is not JSON, or undefined when empty. */
  body: unknown;
  at: number;
}

export interface FakeNeuron {
  registrationId: string;
  bearerToken: string;
  organizationNpi: string;
  organizationName: string;
  organizationType: string;
  /** null when the registration omitted it (the real registry accepts that and corrupts its entry). */
  endpointUrl: string | null;
  registeredAt: number;
  lastHeartbeatAt: number | null;
  heartbeats: number;
}

export interface FakeProvider {
  npi: string;
  registrationId: string;
  name: string;
  types: string[];
  specialty: string | null;
  credentials: unknown[];
  removed: boolean;
}

export interface FakeRegistry {
  url: string;
  requests: RecordedRequest[];
  /** Connections dropped while 'down'. */
  readonly dropped: number;
  neurons: Map<string, FakeNeuron>;
  /** By provider NPI. */
  providers: Map<string, FakeProvider>;
  /** Agent cards by id, as stored (the registry validates nothing and merges a PUT over the stored card). */
  agentCards: Map<string, Record<string, unknown>>;
  setFault(fault: Fault): void;
  /** Gives the registration a new token: the old one now gets 401. */
  revokeToken(registrationId: string): void;
  /** Forgets the registration entirely: its id now gets 401. */
  forget(registrationId: string): void;
  close(): Promise<void>;
}

// Taken from the contract's examples plus the categories the Neuron's configuration offers.
const TAXONOMY = new Set([
  'physician',
  'nursing',
  'pharmacy',
  'dental',
  'behavioral_mental_health',
  'laboratory',
  'radiology_imaging',
  'therapy_rehabilitation',
  'emergency_medical',
  'other',
]);
const MAX_BODY_BYTES = 1024 * 1024; // the contract: bodies over 1 MB are refused
const STALE_AFTER_MS = 5 * 60_000; // the contract: stale 5 minutes after the last heartbeat
const DEFAULT_SEARCH_LIMIT = 20;
const MAX_SEARCH_LIMIT = 100;

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  let fault: Fault = 'none';
  let dropped = 0;
  const requests: RecordedRequest[] = [];
  const neurons = new Map<string, FakeNeuron>();
  const agentCards = new Map<string, Record<string, unknown>>();
  const providers = new Map<string, FakeProvider>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    if (fault === 'down') {
      dropped += 1;
      req.socket.resetAndDestroy();
      return;
    }
    void handle(req, res);
  });
  server.on('connection', (socket) => {
    if (fault === 'down') {
      dropped += 1;
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    let raw: string;
    try {
      raw = await readBody(req);
    } catch (error) {
      if (error instanceof BadRequest) return send(res, error.status, { error: error.message });
      return;
    }
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    requests.push({
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      body,
      at: Date.now(),
    });
    const current = fault;
    if (typeof current === 'object') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, current.slow);
        timers.add(timer);
      });
      if (res.destroyed || req.socket.destroyed) return;
    }
    if (fault === 'error500') return send(res, 500, { error: 'internal error' });
    if (fault === 'oversized') return send(res, 200, { padding: 'x'.repeat(MAX_BODY_BYTES + 10) });
    try {
      const [status, answer] = route(req.method ?? '', url, req.headers.authorization, raw, body);
      send(res, status, answer);
    } catch (error) {
      if (error instanceof BadRequest) send(res, error.status, { error: error.message });
      else send(res, 500, { error: 'internal error' });
    }
  }

  function route(method: string, url: URL, authorization: string | undefined, raw: string, body: unknown): [number, unknown] {
    const parts = url.pathname
      .split('/')
      .filter((part) => part !== '')
      .map(decodeURIComponent);
    if (parts[0] !== 'v1') throw new BadRequest(404, 'not found');
    if (method === 'POST' && parts.length === 2 && parts[1] === 'neurons') return registerNeuron(body);
    if (parts[1] === 'neurons' && parts.length >= 4) {
      const neuron = authenticate(parts[2] ?? '', authorization);
      if (method === 'PUT' && parts.length === 4 && parts[3] === 'endpoint') return heartbeat(neuron, raw, body);
      if (method === 'POST' && parts.length === 4 && parts[3] === 'providers') return registerProvider(neuron, body);
      if (method === 'DELETE' && parts.length === 5 && parts[3] === 'providers') return removeProvider(neuron, parts[4] ?? '');
    }
    if (parts[1] === 'agent-cards') return agentCard(method, parts[2], body);
    if (method === 'GET' && parts[1] === 'registry' && parts.length === 3) {
      if (parts[2] === 'search') return [200, { results: search(url.searchParams) }];
      const entry = entryFor(parts[2] ?? '');
      if (entry === null) throw new BadRequest(404, 'not found');
      return [200, entry];
    }
    throw new BadRequest(404, 'not found');
  }

  /** The contract's agent-card routes: no authentication, no validation. */
  function agentCard(method: string, id: string | undefined, body: unknown): [number, unknown] {
    if (method === 'POST' && id === undefined) {
      const card = object(body);
      const cardId = String(card['id']);
      if (agentCards.has(cardId)) throw new BadRequest(400, `Agent Card with id "${cardId}" already exists`);
      agentCards.set(cardId, card);
      return [201, card];
    }
    if (id === undefined) throw new BadRequest(404, 'not found');
    const stored = agentCards.get(id);
    if (method === 'DELETE') {
      agentCards.delete(id);
      return [204, undefined];
    }
    if (stored === undefined) throw new BadRequest(404, 'Agent Card not found');
    if (method === 'GET') return [200, stored];
    if (method === 'PUT') {
      const merged = { ...stored, ...object(body), id };
      agentCards.set(id, merged);
      return [200, merged];
    }
    throw new BadRequest(404, 'not found');
  }

  function authenticate(registrationId: string, authorization: string | undefined): FakeNeuron {
    if (fault === 'unauthorized') throw new BadRequest(401, 'unauthorized');
    const neuron = neurons.get(registrationId);
    const token = authorization?.startsWith('Bearer ') ? authorization.slice('Bearer '.length) : null;
    // Same answer for an unknown id and a wrong token, as the contract says.
    if (neuron === undefined || token === null || token !== neuron.bearerToken) throw new BadRequest(401, 'unauthorized');
    return neuron;
  }

  function registerNeuron(body: unknown): [number, unknown] {
    const input = object(body);
    const npi = text(input, 'organization_npi');
    if (!luhnNpi(npi)) throw new BadRequest(400, `NPI "${npi}" is not a valid NPI`);
    for (const neuron of neurons.values()) {
      if (neuron.organizationNpi === npi) throw new BadRequest(400, `NPI "${npi}" is already registered`);
    }
    const endpoint = input['neuron_endpoint_url'];
    const neuron: FakeNeuron = {
      registrationId: randomUUID(),
      bearerToken: randomBytes(24).toString('base64url'),
      organizationNpi: npi,
      organizationName: text(input, 'organization_name'),
      organizationType: text(input, 'organization_type'),
      endpointUrl: typeof endpoint === 'string' ? endpoint : null,
      registeredAt: Date.now(),
      lastHeartbeatAt: null,
      heartbeats: 0,
    };
    neurons.set(neuron.registrationId, neuron);
    return [201, { registration_id: neuron.registrationId, bearer_token: neuron.bearerToken, status: 'reachable' }];
  }

  function heartbeat(neuron: FakeNeuron, raw: string, body: unknown): [number, unknown] {
    if (raw.trim() === '') throw new BadRequest(400, 'request body is required');
    const endpoint = text(object(body), 'neuron_endpoint_url');
    neuron.endpointUrl = endpoint;
    neuron.lastHeartbeatAt = Date.now();
    neuron.heartbeats += 1;
    return [200, { status: 'reachable' }];
  }

  function registerProvider(neuron: FakeNeuron, body: unknown): [number, unknown] {
    const input = object(body);
    const npi = text(input, 'provider_npi');
    if (!luhnNpi(npi)) throw new BadRequest(400, `NPI "${npi}" is not a valid NPI`);
    const types = input['provider_types'];
    if (!Array.isArray(types) || types.length === 0 || !types.every((type) => typeof type === 'string')) {
      throw new BadRequest(400, 'provider_types must be a non-empty array of strings');
    }
    const unknown = types.filter((type) => !TAXONOMY.has(type as string));
    if (unknown.length > 0) throw new BadRequest(400, `provider type "${String(unknown[0])}" is not in the taxonomy`);
    const existing = providers.get(npi);
    if (existing !== undefined) throw new BadRequest(400, `provider NPI "${npi}" is already registered`);
    const specialty = input['specialty'];
    const credentials = input['credentials'];
    providers.set(npi, {
      npi,
      registrationId: neuron.registrationId,
      name: text(input, 'provider_name'),
      types: types as string[],
      specialty: typeof specialty === 'string' ? specialty : null,
      credentials: Array.isArray(credentials) ? credentials : [],
      removed: false,
    });
    return [201, { provider_id: npi, status: 'registered' }];
  }

  function removeProvider(neuron: FakeNeuron, npi: string): [number, unknown] {
    const provider = providers.get(npi);
    // The real registry may keep the entry; this fake forgets it so a later registration works.
    if (provider !== undefined && provider.registrationId === neuron.registrationId) providers.delete(npi);
    return [204, undefined];
  }

  function entryFor(npi: string): Record<string, unknown> | null {
    for (const neuron of neurons.values()) {
      if (neuron.organizationNpi === npi) return organizationEntry(neuron);
    }
    const provider = providers.get(npi);
    if (provider === undefined) return null;
    return providerEntry(provider);
  }

  function endpointStatus(neuron: FakeNeuron): string {
    const last = neuron.lastHeartbeatAt ?? neuron.registeredAt;
    return Date.now() - last > STALE_AFTER_MS ? 'stale' : 'reachable';
  }

  function organizationEntry(neuron: FakeNeuron): Record<string, unknown> {
    return {
      npi: neuron.organizationNpi,
      entity_type: 'organization',
      name: neuron.organizationName,
      organization_type: neuron.organizationType,
      credential_status: 'pending',
      neuron_endpoint_url: neuron.endpointUrl,
      endpoint_status: endpointStatus(neuron),
    };
  }

  function providerEntry(provider: FakeProvider): Record<string, unknown> {
    const neuron = neurons.get(provider.registrationId);
    return {
      npi: provider.npi,
      entity_type: 'provider',
      name: provider.name,
      provider_types: provider.types,
      specialty: provider.specialty,
      credential_status: 'pending',
      organization_npi: neuron?.organizationNpi ?? null,
      organization_name: neuron?.organizationName ?? null,
      neuron_endpoint_url: neuron?.endpointUrl ?? null,
      endpoint_status: neuron ? endpointStatus(neuron) : 'stale',
    };
  }

  function search(params: URLSearchParams): Array<Record<string, unknown>> {
    const all: Array<Record<string, unknown>> = [
      ...[...neurons.values()].map(organizationEntry),
      ...[...providers.values()].map(providerEntry),
    ];
    const contains = (value: unknown, needle: string): boolean =>
      typeof value === 'string' && value.toLowerCase().includes(needle.toLowerCase());
    const npi = params.get('npi');
    const name = params.get('name');
    const specialty = params.get('specialty');
    const providerType = params.get('provider_type');
    const organization = params.get('organization');
    const matches = all.filter(
      (entry) =>
        (npi === null || entry['npi'] === npi) &&
        (name === null || contains(entry['name'], name)) &&
        (specialty === null || contains(entry['specialty'], specialty)) &&
        (providerType === null || (Array.isArray(entry['provider_types']) && entry['provider_types'].includes(providerType))) &&
        (organization === null || contains(entry['organization_name'], organization) || entry['organization_npi'] === organization),
    );
    const limit = Math.min(Math.max(Number(params.get('limit') ?? DEFAULT_SEARCH_LIMIT) || DEFAULT_SEARCH_LIMIT, 1), MAX_SEARCH_LIMIT);
    const offset = Math.max(Number(params.get('offset') ?? 0) || 0, 0);
    return matches.slice(offset, offset + limit);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake registry has no TCP address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    get dropped() {
      return dropped;
    },
    neurons,
    providers,
    agentCards,
    setFault(next: Fault): void {
      fault = next;
      if (next === 'down') {
        for (const socket of sockets) socket.resetAndDestroy();
        sockets.clear();
      }
    },
    revokeToken(registrationId: string): void {
      const neuron = neurons.get(registrationId);
      if (neuron) neuron.bearerToken = randomBytes(24).toString('base64url');
    },
    forget(registrationId: string): void {
      neurons.delete(registrationId);
    },
    async close(): Promise<void> {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () =>
      tooLarge ? reject(new BadRequest(413, 'request body too large')) : resolve(Buffer.concat(chunks).toString('utf8')),
    );
    req.on('error', reject);
  });
}

function object(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest(400, 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function text(input: Record<string, unknown>, field: string): string {
  const value = input[field];
  if (typeof value !== 'string' || value.trim() === '') throw new BadRequest(400, `${field} is required`);
  return value;
}

/** NPI check digit: Luhn over "80840" followed by the first nine digits. */
function luhnNpi(npi: string): boolean {
  if (!/^\d{10}$/.test(npi)) return false;
  const digits = `80840${npi.slice(0, 9)}`;
  let sum = 0;
  for (let i = digits.length - 1, double = true; i >= 0; i--, double = !double) {
    let digit = Number(digits[i]);
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return (10 - (sum % 10)) % 10 === Number(npi[9]);
}
