/**
 * Test support for the REST API suites (not a test file itself): a real Neuron on 127.0.0.1 with
 * a temporary config file and SQLite database, API keys of each scope, an HTTP client over real
 * sockets, and a recorder that checks every answer the tests received against the Neuron's own
 * OpenAPI document (status documented, body valid against the declared schema).
 */
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Neuron } from '../../src/main.ts';
import { startTestNeuron, type ConfigOverrides } from './neuron.ts';
import { isoNow } from '../../src/foundation/storage/index.ts';
import { ApiKeyService } from '../../src/domains/api-keys/service.ts';
import { insertActive, type Relationship } from '../../src/domains/relationships/store.ts';
import { upsertFromHandshake, type PatientProfile } from '../../src/domains/directory/store.ts';
import type { Scope } from '../../src/foundation/rest/principal.ts';

/** Generous: only the rate-limit tests run into limits, with their own small values. */
const API_TEST_LIMITS = { rate_limit_per_minute: 100_000, auth_failure_limit_per_minute: 10_000 };

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  body: any;
}

export interface RequestOptions {
  key?: string | null;
  /** Send the key in X-API-Key instead of Authorization: Bearer. */
  keyHeader?: 'bearer' | 'x-api-key';
  /** An object is sent as JSON; a string is sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
}

interface Recorded {
  method: string;
  path: string;
  status: number;
  contentType: string;
  body: unknown;
}

export interface ApiTestNeuron {
  neuron: Neuron;
  url: string;
  dataDir: string;
  configFile: string;
  keys: Record<Scope, string>;
  apiKeys: ApiKeyService;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  createKey(scopes: Scope[], options?: { label?: string; expiresAt?: string | null }): Promise<{ key: string; id: string }>;
  /** Checks every recorded answer against /openapi.json; call once at the end of a suite. */
  checkConformance(): Promise<void>;
  /** Stops the Neuron; removes its directory unless keepData. */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

export async function startApiNeuron(options: { config?: ConfigOverrides } = {}): Promise<ApiTestNeuron> {
  const overrides = options.config ?? {};
  const base = await startTestNeuron({
    config: { ...overrides, api: { ...API_TEST_LIMITS, ...(overrides['api'] as ConfigOverrides | undefined) } },
  });
  const { neuron, url, dataDir, configFile } = base;
  const apiKeys = new ApiKeyService({ storage: neuron.storage, audit: neuron.audit });
  const createKey = async (
    scopes: Scope[],
    keyOptions: { label?: string; expiresAt?: string | null } = {},
  ): Promise<{ key: string; id: string }> => {
    const { key, view } = await apiKeys.create({
      label: keyOptions.label ?? `test-${scopes.join('-')}`,
      scopes,
      expiresAt: keyOptions.expiresAt ?? null,
      actor: 'cli',
    });
    return { key, id: view.id };
  };
  const keys = {
    read: (await createKey(['read'], { label: 'reader' })).key,
    write: (await createKey(['write'], { label: 'writer' })).key,
    admin: (await createKey(['admin'], { label: 'admin' })).key,
  };
  const recorded: Recorded[] = [];

  const request = async (method: string, requestPath: string, requestOptions: RequestOptions = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { ...(requestOptions.headers ?? {}) };
    const key = requestOptions.key;
    if (key !== undefined && key !== null) {
      if (requestOptions.keyHeader === 'x-api-key') headers['x-api-key'] = key;
      else headers['authorization'] = `Bearer ${key}`;
    }
    let body: string | undefined;
    if (requestOptions.body !== undefined) {
      body = typeof requestOptions.body === 'string' ? requestOptions.body : JSON.stringify(requestOptions.body);
      if (headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${url}${requestPath}`, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    recorded.push({
      method,
      path: requestPath.split('?')[0]!,
      status: response.status,
      contentType: (response.headers.get('content-type') ?? '').split(';')[0]!.trim(),
      body: parsed ?? text,
    });
    return { status: response.status, headers: response.headers, text, body: parsed };
  };

  return {
    neuron,
    url,
    dataDir,
    configFile,
    keys,
    apiKeys,
    request,
    createKey,
    async checkConformance() {
      const document = (await (await fetch(`${url}/openapi.json`)).json()) as OpenApiDocument;
      const problems = conformanceProblems(document, recorded);
      assert.deepEqual(problems, [], `answers that do not match the OpenAPI document:\n${problems.join('\n')}`);
    },
    stop: (stopOptions) => base.stop(stopOptions),
  };
}

type OpenApiResponse = { content?: Record<string, { schema: unknown }> } | { $ref: string };

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, OpenApiResponse> }>>;
  components?: { schemas?: Record<string, unknown>; responses?: Record<string, OpenApiResponse> };
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** Every recorded answer whose route is in the document: its status must be documented and its body valid. */
export function conformanceProblems(document: OpenApiDocument, recorded: readonly Recorded[]): string[] {
  const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  const routes = Object.entries(document.paths).map(([template, operations]) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
    operations,
  }));
  const cache = new Map<unknown, ReturnType<typeof ajv.compile>>();
  const problems: string[] = [];
  for (const answer of recorded) {
    const route = routes.find((r) => r.pattern.test(answer.path));
    const where = `${answer.method} ${answer.path} -> ${answer.status}`;
    if (!route) {
      if (answer.path.startsWith('/v1') && answer.status !== 404) problems.push(`${where}: path not in the document`);
      continue;
    }
    const operation = route.operations[answer.method.toLowerCase()];
    if (!operation) {
      // A documented path used with an undocumented method is answered 405 METHOD_NOT_ALLOWED.
      if (answer.status !== 405) problems.push(`${where}: method not in the document, and not answered 405`);
      continue;
    }
    const declared = operation.responses[String(answer.status)] ?? operation.responses[`${String(answer.status)[0]}XX`];
    // A shared answer is a reference into components.responses.
    const response =
      declared !== undefined && '$ref' in declared
        ? (document.components?.responses?.[declared.$ref.replace('#/components/responses/', '')] as
            | { content?: Record<string, { schema: unknown }> }
            | undefined)
        : declared;
    if (!response) {
      problems.push(`${where}: status not documented for ${route.template}`);
      continue;
    }
    if (!response.content) continue;
    const media = response.content[answer.contentType];
    if (!media) {
      problems.push(`${where}: content type ${answer.contentType} not documented (${Object.keys(response.content).join(', ')})`);
      continue;
    }
    let validate = cache.get(media.schema);
    if (!validate) {
      // The schema's $refs point into components.schemas: compile it beside them.
      validate = ajv.compile({
        $ref: '#/$defs/answer',
        $defs: { answer: media.schema },
        components: { schemas: document.components?.schemas ?? {} },
      });
      cache.set(media.schema, validate);
    }
    if (!validate(answer.body)) problems.push(`${where}: body does not match its schema: ${ajv.errorsText(validate.errors)}`);
  }
  return problems;
}

// ---- fixtures, written through the stores as the handshake would ----

let counter = 0;

export interface RelationshipFixture {
  patientAgentId?: string;
  providerNpi?: string;
  status?: Relationship['status'];
  establishedAt?: string;
  profile?: PatientProfile | null;
}

/** Inserts a patient directory entry and an active (or given status) relationship. */
export async function insertRelationship(neuron: Neuron, fixture: RelationshipFixture = {}): Promise<Relationship> {
  counter += 1;
  const at = fixture.establishedAt ?? isoNow();
  const patientAgentId = fixture.patientAgentId ?? `did:example:patient-${counter}-${randomUUID().slice(0, 8)}`;
  const relationship: Relationship = {
    id: randomUUID(),
    patientAgentId,
    patientPublicKey: 'A'.repeat(43),
    patientEndpoint: `https://patient-${counter}.example/agent`,
    providerNpi: fixture.providerNpi ?? '1679576722',
    consentedActions: ['appointments.read'],
    consentTokenPayload: 'e30',
    consentTokenSignature: 'A'.repeat(86),
    tokenDialect: 'A',
    consentExpiresAt: isoNow(Date.now() + 365 * 86_400_000),
    connectionId: null,
    status: 'active',
    statusReason: null,
    establishedAt: at,
    lastHandshakeAt: at,
    updatedAt: at,
  };
  await upsertFromHandshake(
    neuron.storage.db,
    {
      patientAgentId,
      patientPublicKey: relationship.patientPublicKey,
      patientEndpoint: relationship.patientEndpoint,
      profile: fixture.profile ?? null,
    },
    at,
  );
  assert.equal(await insertActive(neuron.storage.db, relationship), true);
  if (fixture.status !== undefined && fixture.status !== 'active') {
    await neuron.storage.db.updateTable('relationships').set({ status: fixture.status }).where('id', '=', relationship.id).execute();
    relationship.status = fixture.status;
  }
  return relationship;
}

/** Problem document checks shared by the suites. */
export function assertProblem(response: ApiResponse, status: number, code: string): void {
  assert.equal(response.status, status, `expected ${status} ${code}, got ${response.status}: ${response.text}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(response.body?.code, code, response.text);
}
