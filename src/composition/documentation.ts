/**
 * The OpenAPI 3.1 document, generated from the route schemas at `GET /openapi.json`, and the
 * interactive reference (swagger-ui) at `GET /docs`.
 *
 * Registered through app.ts's `documentation` hook before any route and not encapsulated, so
 * every route of the application appears, including routes other parts add later. The transform
 * below fills in, for every route, what its schema does not have to repeat: the security schemes
 * its `config.auth` accepts, the scope it needs, and the problem responses every route can give
 * (400 invalid input, 401, 403, 429, 413/415 for bodies).
 *
 * The reference page is loaded on its first request (see referencePage below): swagger-ui and the
 * static file server under it hold about 1.2 MB of heap, for a page most Neurons never serve.
 */
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchema,
  type RouteOptions,
} from 'fastify';
import swagger from '@fastify/swagger';
import Type from 'typebox';
import { NeuronError, PROBLEM_CONTENT_TYPE, toProblem } from '../foundation/errors/index.ts';
import type { RouteAuth } from '../foundation/rest/principal.ts';
import { Problem } from '../foundation/rest/schemas.ts';
import { WEBHOOK_EVENT_TYPES } from '../domains/webhooks/index.ts';
import { COMPONENT_SCHEMAS, optionalDefaultedParameters, referenceComponents } from './openapi-components.ts';
import { SerializedDocument } from '../http/serialized-document.ts';

export interface DocumentationOptions {
  version: string;
  organizationName: string;
  /** Serve /openapi.json and /docs (api.docs_enabled). */
  enabled: boolean;
  /** The base URL clients reach the API at (from server.public_url, else the bound address); read on the first request. */
  serverUrl: () => string;
  /** The Neuron serves TLS itself: only then may the reference page tell browsers to upgrade its requests to https. */
  tls: boolean;
}

export const SECURITY_SCHEMES = {
  bearerApiKey: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'nrn_<key id>_<secret><checksum>',
    description:
      'An API key in `Authorization: Bearer <key>`. Keys are created with `neuron api-key create` or `POST /v1/api-keys`; each has scopes read, write and/or admin (admin implies write implies read).',
  },
  apiKeyHeader: {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'The same API key in the `X-API-Key` header, for clients that cannot set Authorization.',
  },
  providerCredential: {
    type: 'http',
    scheme: 'bearer',
    description:
      'A provider CareAgent credential (issued when the provider registers with this Neuron), in `Authorization: Bearer <credential>`.',
  },
} as const;

const problemContent = { 'application/problem+json': { schema: Problem } };

const rateLimitHeaders = {
  RateLimit: {
    type: 'string',
    description: 'limit=<per minute>, remaining=<requests left>, reset=<seconds until the allowance is full again>',
  },
  'RateLimit-Policy': { type: 'string', description: '<limit>;w=60: the per-minute allowance of this key' },
};

const STATUS_TEXT: Record<string, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content' };

function problemResponse(description: string, headers?: Record<string, unknown>): Record<string, unknown> {
  return { description, content: problemContent, ...(headers ? { headers } : {}) };
}

/** Adds the security, scope and common problem responses a route's auth and inputs imply. */
export function describeRoute(schema: FastifySchema | undefined, auth: RouteAuth | undefined): FastifySchema {
  const out: Record<string, unknown> = { ...(schema ?? {}) };
  const responses: Record<string, unknown> = { ...((out['response'] as Record<string, unknown> | undefined) ?? {}) };
  const add = (status: string, value: Record<string, unknown>): void => {
    if (responses[status] === undefined) responses[status] = value;
  };

  if (auth === undefined || auth.kind === 'none') {
    if (out['security'] === undefined) out['security'] = [];
  } else {
    const security: Array<Record<string, string[]>> = [];
    if (auth.kind === 'api_key' || auth.kind === 'provider_or_api_key') security.push({ bearerApiKey: [] }, { apiKeyHeader: [] });
    if (auth.kind === 'provider' || auth.kind === 'provider_or_api_key') security.push({ providerCredential: [] });
    if (out['security'] === undefined) out['security'] = security;
    if (auth.kind !== 'provider') {
      out['x-required-scope'] = auth.scope;
      const note =
        auth.kind === 'api_key'
          ? `Requires an API key with the \`${auth.scope}\` scope.`
          : `Requires a provider credential, or an API key with the \`${auth.scope}\` scope.`;
      out['description'] = out['description'] ? `${note}\n\n${String(out['description'])}` : note;
    } else {
      const note = 'Requires a provider CareAgent credential.';
      out['description'] = out['description'] ? `${note}\n\n${String(out['description'])}` : note;
    }
    add('401', problemResponse('No credential, or the credential is not valid, revoked or expired (UNAUTHENTICATED)'));
    add('403', problemResponse('The credential does not allow this (FORBIDDEN)'));
    add(
      '429',
      problemResponse(
        'Over the per-key request limit, or too many failed authentications from this address (RATE_LIMITED); see Retry-After',
        {
          'Retry-After': { type: 'integer', description: 'seconds to wait before retrying' },
          ...rateLimitHeaders,
        },
      ),
    );
  }
  if (out['body'] !== undefined || out['querystring'] !== undefined || out['params'] !== undefined) {
    add('400', problemResponse('The request is not valid (VALIDATION_FAILED, MALFORMED_JSON, INVALID_CURSOR); `errors` names each field'));
  }
  if (out['body'] !== undefined) {
    add('413', problemResponse('The body is larger than server.body_limit_bytes (BODY_TOO_LARGE)'));
    add('415', problemResponse('The body is not application/json (UNSUPPORTED_MEDIA_TYPE)'));
  }
  for (const [status, response] of Object.entries(responses)) {
    const value = response as Record<string, unknown>;
    if (value['description'] === undefined && value['x-response-description'] === undefined && STATUS_TEXT[status] !== undefined)
      responses[status] = { ...value, 'x-response-description': STATUS_TEXT[status] };
  }
  if (Object.keys(responses).length > 0) out['response'] = responses;
  return out as FastifySchema;
}

const WebhookEnvelope = (type: string, data: ReturnType<typeof Type.Object>): ReturnType<typeof Type.Object> =>
  Type.Object({
    event_id: Type.String({
      format: 'uuid',
      description: 'unique per event and subscription; drop duplicates by it (delivery is at least once)',
    }),
    type: Type.Literal(type),
    occurred_at: Type.String({ format: 'date-time' }),
    data,
  });

const WEBHOOK_DATA: Record<(typeof WEBHOOK_EVENT_TYPES)[number], ReturnType<typeof Type.Object>> = {
  'relationship.established': Type.Object(
    {
      relationship_id: Type.String(),
      patient_agent_id: Type.String(),
      provider_npi: Type.String(),
    },
    { additionalProperties: true },
  ),
  'relationship.terminated': Type.Object({
    relationship_id: Type.String(),
    patient_agent_id: Type.String(),
    provider_npi: Type.String(),
    reason: Type.String(),
    terminated_at: Type.String({ format: 'date-time' }),
  }),
  'patient.blocked': Type.Object({
    patient_agent_id: Type.String(),
    reason: Type.String(),
    blocked_at: Type.String({ format: 'date-time' }),
    suspended_relationship_ids: Type.Array(Type.String()),
  }),
};

function webhooksSection(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const type of WEBHOOK_EVENT_TYPES) {
    out[type] = {
      post: {
        operationId: `${type.replace(/\.(\w)/g, (_match, letter: string) => letter.toUpperCase())}Event`,
        tags: ['webhooks'],
        summary: `${type} event`,
        description:
          'POSTed to each subscription to this event type. Verify `Neuron-Signature` (hmac-sha256=<hex of HMAC-SHA256 over the raw body, keyed with the subscription secret>) before parsing; see docs/api.md.',
        parameters: [
          { name: 'Neuron-Signature', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'Neuron-Event-Id', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'Neuron-Event-Type', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'Neuron-Delivery-Attempt', in: 'header', required: false, schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: WebhookEnvelope(type, WEBHOOK_DATA[type]) } } },
        responses: {
          '2XX': { description: 'Received; any 2xx stops the retries' },
          '4XX': { description: 'Not accepted; retried with backoff like any other failure, then dead-lettered (GET /v1/outbox/dead)' },
        },
        // The receiver authenticates the Neuron by the signature, not by a credential the Neuron sends.
        security: [],
      },
    };
  }
  return out;
}

export function documentation(options: DocumentationOptions): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app) => {
    if (!options.enabled) return;
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Neuron REST API',
          version: options.version,
          description: [
            `The REST API of ${options.organizationName}'s Neuron, its front door on the CareAgent network.`,
            '',
            'Authenticate with an API key (`Authorization: Bearer nrn_…` or `X-API-Key`). Errors are RFC 9457 problem documents (`application/problem+json`) with a stable `code`; every code is in docs/errors.md. Lists page with `limit` and `after` and answer `{ items, next }`. Each key may make `api.rate_limit_per_minute` requests a minute (RateLimit headers on every authenticated answer).',
          ].join('\n'),
          license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
          // The organization that runs this Neuron answers for its API.
          contact: { name: options.organizationName },
        },
        components: {
          securitySchemes: SECURITY_SCHEMES as unknown as Record<string, never>,
          schemas: COMPONENT_SCHEMAS as Record<string, never>,
        },
        tags: [
          { name: 'organization', description: 'Who this Neuron is' },
          { name: 'relationships', description: "Consent relationships between patients and the organization's providers" },
          { name: 'patients', description: 'The patient directory (front-desk fields only)' },
          { name: 'blocks', description: 'Patient agents the organization refuses' },
          { name: 'audit', description: 'The tamper-evident audit log' },
          { name: 'webhooks', description: 'Event subscriptions' },
          { name: 'api-keys', description: 'API keys' },
          { name: 'status', description: 'What the Neuron is doing' },
          { name: 'operations', description: 'Health and metrics' },
          { name: 'providers', description: 'The provider roster the operator manages' },
          { name: 'console', description: 'Sign-in and sessions of the operators who use the console at /console' },
          {
            name: 'provider CareAgent',
            description: 'What a provider CareAgent calls: registration, liveness, its relationship feed and consent checks',
          },
        ],
        webhooks: webhooksSection() as never,
      },
      transform: ({ schema, url, route }: { schema: FastifySchema; url: string; route: RouteOptions }) => ({
        schema: describeRoute(schema, route.config?.auth),
        url,
      }),
    });
    // Built on the first request, when every route is registered: one serialization for the life
    // of the process (serializing on each request let one anonymous client starve the handshakes).
    const served = new SerializedDocument(() => finalDocument(app.swagger() as Record<string, unknown>, options.serverUrl()));
    let page: Promise<FastifyInstance> | undefined;
    const servePage = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      page ??= referencePage(served.document(), { organizationName: options.organizationName, tls: options.tls }).catch(
        (error: unknown) => {
          page = undefined;
          throw error;
        },
      );
      const inner = await page;
      // The inner instance answers on the same socket; helmet's headers, set on it already, stay.
      reply.hijack();
      inner.routing(request.raw, reply.raw);
    };
    const pageRoute = { schema: { hide: true }, config: { auth: { kind: 'none' as const } } };
    for (const url of REFERENCE_PAGE_URLS) app.get(url, pageRoute, servePage);
    app.get(
      '/openapi.json',
      {
        schema: { hide: true },
        config: { auth: { kind: 'none' } },
      },
      async (request, reply) => served.send(request, reply),
    );
  };
  // Not encapsulated: swagger must see the routes of every plugin.
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}

/** What swagger-ui serves under /docs: the page, its settings, the document, and its static files. */
const REFERENCE_PAGE_URLS = ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/uiConfig', '/docs/initOAuth', '/docs/static/*'];

/**
 * The interactive reference (swagger-ui) in a fastify instance of its own, created on the first
 * request for it: swagger in static mode over the document the Neuron generated, and swagger-ui on
 * top, exactly as they would be registered on the main instance. The main instance hands it the
 * raw request and response of every /docs URL.
 */
async function referencePage(
  document: Record<string, unknown>,
  options: { organizationName: string; tls: boolean },
): Promise<FastifyInstance> {
  const { default: swaggerUi } = await import('@fastify/swagger-ui');
  const page = Fastify({ logger: false });
  await page.register(swagger, { mode: 'static', specification: { document: document as never } });
  await page.register(swaggerUi, {
    routePrefix: '/docs',
    // helmet's CSP is strict for the JSON API; the reference page gets its own (see pagePolicy).
    staticCSP: true,
    transformStaticCSP: (policy: string) => pagePolicy(policy, options.tls),
    theme: { title: `${escapeHtml(options.organizationName)}: Neuron API reference` },
    // No badge from validator.swagger.io: the page loads nothing from another origin.
    uiConfig: { deepLinking: true, persistAuthorization: false, tryItOutEnabled: false, validatorUrl: null },
  });
  // A static file swagger-ui does not have: the same problem document as any unknown route.
  page.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const error = new NeuronError('ROUTE_NOT_FOUND', { message: `no route ${request.method} ${path}` });
    void reply
      .code(error.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send(toProblem(error, path, request.id));
  });
  await page.ready();
  return page;
}

/**
 * swagger-ui's own policy (its script and style hashes kept), restricted to this origin: without
 * the validator badge's host and `https:` sources, and without `upgrade-insecure-requests` unless
 * the Neuron serves TLS itself. On a plain-HTTP LAN address that directive sends the page's
 * scripts and styles to an https:// port nothing listens on, and the page stays blank.
 */
export function pagePolicy(policy: string, tls: boolean): string {
  return policy
    .split(';')
    .map((directive) =>
      directive
        .trim()
        .split(/\s+/)
        .filter((source) => source !== 'https:' && source !== 'validator.swagger.io')
        .join(' '),
    )
    .filter((directive) => directive !== '' && (tls || directive !== 'upgrade-insecure-requests'))
    .join('; ');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/** The document as served: components referenced, and the server's URL. */
function finalDocument(generated: Record<string, unknown>, serverUrl: string): Record<string, unknown> {
  const { openapi, info, ...rest } = referenceComponents(generated);
  optionalDefaultedParameters(rest['paths']);
  return { openapi, info, servers: [{ url: serverUrl, description: 'this Neuron' }], ...rest };
}
