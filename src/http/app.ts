/**
 * The HTTP(S) server: fastify on the Neuron's single port. The handshake WebSocket shares this
 * server (see src/domains/handshake/), routed on the upgrade event. Every answer that is an error is an
 * RFC 9457 problem document with a catalogue code.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyServerOptions,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import helmet from '@fastify/helmet';
import cors from '@fastify/cors';
import type { Logger } from 'pino';
import type { NeuronConfig } from '../foundation/config/index.ts';
import { NeuronError, PROBLEM_CONTENT_TYPE, fromProtocolError, isNeuronError, toProblem } from '../foundation/errors/index.ts';
import { healthRoutes, type ReadinessCheck } from './health.ts';
import { createClientAddress } from '../foundation/rest/client-address.ts';
import { PROTOCOL_BOUNDS, isProtocolError } from 'neuron-careagent-client/protocol';
import { OnFirstUseSchemaCompilers } from './schema-compilers.ts';
import { RepeatedErrorLog } from '../foundation/observability/repeated-errors.ts';
import { EdgeLogController, registerRequestIdHeader, registerRequestMetrics, requestIdFrom } from './request-edge.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The route schema compilers (compile on first use; compileAll() for the tests). */
    routeSchemas: OnFirstUseSchemaCompilers;
  }
}

export type HttpApp = FastifyInstance<
  import('node:http').Server | import('node:https').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  Logger,
  TypeBoxTypeProvider
>;

export interface HttpAppOptions {
  config: NeuronConfig;
  /** Resolved TLS files, when configured. */
  tls: { certFile: string; keyFile: string } | null;
  logger: Logger;
  readiness: ReadinessCheck;
  /**
   * Application-wide hooks (API key and provider authentication), registered before any route and
   * not encapsulated (each marks itself with Symbol.for('skip-override')), so they run for every route.
   */
  hooks?: FastifyPluginAsync[];
  /** Registered before the domain routes so every route schema reaches the OpenAPI document. */
  documentation?: FastifyPluginAsync;
  /** Where the request-duration histogram goes (src/http/request-edge.ts); none when absent. */
  metrics?: import('prom-client').Registry;
  /** Domain route plugins, registered in order. */
  routes: FastifyPluginAsync[];
}

export async function createHttpApp(options: HttpAppOptions): Promise<HttpApp> {
  const { config } = options;
  // X-Forwarded-For counts only from server.trusted_proxies; the handshake upgrade path uses the same.
  const clientAddress = createClientAddress(config.server.trusted_proxies);
  const app = Fastify(serverOptions(options, clientAddress.trust)).withTypeProvider<TypeBoxTypeProvider>() as unknown as HttpApp;
  // Set by the authentication hooks (src/foundation/rest/principal.ts); null until one has identified the caller.
  app.decorateRequest('principal', null);
  // The address every per-address limit counts by (src/foundation/rest/client-address.ts).
  app.decorateRequest('clientAddress', {
    getter(this: { raw: import('node:http').IncomingMessage }) {
      return clientAddress.of(this.raw);
    },
  });
  // Bodies are JSON and are checked as sent (a number where a string belongs is an error, never
  // converted); query strings and path parameters are text and are converted (?limit=10).
  // Problem documents name the field; ajv's messages never contain the offending value.
  // Both compile a route's schema on its first use (src/http/schema-compilers.ts).
  const schemaCompilers = new OnFirstUseSchemaCompilers({ bodies: schemaValidator(false), text: schemaValidator('array') });
  app.setValidatorCompiler(schemaCompilers.validator);
  app.setSerializerCompiler(schemaCompilers.serializer);
  app.decorate('routeSchemas', schemaCompilers);

  registerProblemAnswers(app, options.logger);
  registerRequestIdHeader(app as unknown as FastifyInstance);
  if (options.metrics) registerRequestMetrics(app as unknown as FastifyInstance, options.metrics);

  await app.register(helmet, {
    // JSON answers load nothing; the API reference page at /docs sets its own policy.
    contentSecurityPolicy: { useDefaults: false, directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"] } },
    hsts: options.tls !== null,
  });
  await app.register(cors, {
    origin: config.api.cors_origins.length === 0 ? false : config.api.cors_origins,
    credentials: false,
  });

  for (const hooks of options.hooks ?? []) await app.register(hooks);
  if (options.documentation) await app.register(options.documentation);
  await app.register(healthRoutes(options.readiness));
  for (const routes of options.routes) await app.register(routes);
  return app;
}

/** fastify's and Node's server settings: limits, timeouts, request ids, TLS, the router's refusals. */
function serverOptions(options: HttpAppOptions, trustProxy: FastifyServerOptions['trustProxy']): FastifyServerOptions {
  const { config } = options;
  const fastifyOptions: FastifyServerOptions = {
    loggerInstance: options.logger,
    bodyLimit: config.server.body_limit_bytes,
    requestTimeout: config.server.request_timeout_ms,
    keepAliveTimeout: config.server.keep_alive_timeout_ms,
    return503OnClosing: true,
    trustProxy,
    // A caller's X-Request-Id is kept when short and plain (correlation across systems), else ours
    // (src/http/request-edge.ts); logged as request_id. fastify's own request lines print the raw
    // URL with its query string, so the edge logs one line of its own instead.
    requestIdHeader: false,
    genReqId: (raw) => requestIdFrom(raw, config.server.request_id_max_chars),
    logController: new EdgeLogController(),
    // A request that does not arrive within request_timeout_ms gets a problem document too.
    clientErrorHandler,
    // The longest path parameter is a patient agent id (1-256 characters, the protocol's bound);
    // fastify's default of 100 made longer, valid ids unreachable. Measured after percent-decoding.
    routerOptions: { maxParamLength: PROTOCOL_BOUNDS.agentIdMaxChars },
    frameworkErrors: answerRouterRefusal,
  };
  // Node checks request deadlines only every connectionsCheckingInterval (30 s by default), which
  // would let a slow client hold a connection up to 30 s past request_timeout_ms.
  // Node's own headersTimeout (60 s) outlives request_timeout_ms unless set when the server is
  // made, so a client trickling its headers was held twice the documented time: both are
  // request_timeout_ms, given to Node's server constructor (fastify sets only requestTimeout, later).
  const deadlines = {
    connectionsCheckingInterval: deadlineCheckMs(config),
    headersTimeout: config.server.request_timeout_ms,
    requestTimeout: config.server.request_timeout_ms,
  };
  const https = options.tls
    ? { https: { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile), ...deadlines } }
    : { http: deadlines };
  return { ...fastifyOptions, ...https } as FastifyServerOptions;
}

/**
 * The router's own refusals (a path parameter over that length, a malformed percent-encoding) are
 * problem documents like every other answer, and do not echo the path.
 */
const answerRouterRefusal: NonNullable<FastifyServerOptions['frameworkErrors']> = (error, request, reply) => {
  const neuronError =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' || error.code === 'FST_ERR_BAD_URL'
      ? new NeuronError('VALIDATION_FAILED', {
          message:
            error.code === 'FST_ERR_BAD_URL'
              ? 'the request path is not valid'
              : `a path parameter is longer than ${PROTOCOL_BOUNDS.agentIdMaxChars} characters`,
        })
      : toNeuronError(error);
  if (neuronError.code === 'SERVER_ERROR') request.log.error({ err: error }, 'unexpected error');
  // No hooks run for the router's refusals, so the request id header is set here.
  void (reply as FastifyReply)
    .code(neuronError.status)
    .header('x-request-id', request.id)
    .type(PROBLEM_CONTENT_TYPE)
    .send(toProblem(neuronError, undefined, request.id));
};

/** Every error and every unknown route answered as a problem document; 405 with Allow for a known path. */
function registerProblemAnswers(app: HttpApp, logger: Logger): void {
  // A failure every request meets alike (a full disk) is logged once, then summarised.
  const repeatedErrors = new RepeatedErrorLog({ logger });
  // A known path used with a method it does not have is 405 with Allow, not 404 (RFC 9110 15.5.6).
  const routeMethods = new RouteMethods();
  app.addHook('onRoute', (route) => routeMethods.add(route.method, route.url));
  const routeNotFound = (method: string, path: string): NeuronError => {
    const allowed = routeMethods.of(path);
    return allowed.length > 0
      ? new NeuronError('METHOD_NOT_ALLOWED', {
          message: `${method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
          headers: { allow: allowed.join(', ') },
        })
      : new NeuronError('ROUTE_NOT_FOUND', { message: `no route ${method} ${path}` });
  };
  app.setErrorHandler((error: FastifyError | NeuronError, request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    // No route matched, and fastify refused the request before the not-found handler (a QUERY
    // without Content-Type, RFC 10008 2): the missing route is the answer, as for any other method.
    // A client that went away mid-body is not the server's error.
    const neuronError = request.is404 && !isNeuronError(error) ? routeNotFound(request.method, path) : toNeuronError(error);
    if (clientWentAway(error, request.raw))
      request.log.debug({ error_code: (error as NodeJS.ErrnoException).code }, 'client went away before the request was read');
    else if (neuronError.code === 'SERVER_ERROR') repeatedErrors.error(error, {}, 'unexpected error', request.log);
    else request.log.debug({ code: neuronError.code }, 'request refused');
    for (const [name, value] of Object.entries(neuronError.headers ?? {})) reply.header(name, value);
    void reply
      .code(neuronError.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send(toProblem(neuronError, path, request.id));
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const error = routeNotFound(request.method, path);
    for (const [name, value] of Object.entries(error.headers ?? {})) reply.header(name, value);
    void reply
      .code(error.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send(toProblem(error, path, request.id));
  });
  // A parameter route must not answer for a fixed path beside it: PATCH /v1/providers/register
  // matches PATCH /v1/providers/:npi, yet /v1/providers/register is its own resource (POST only).
  // Runs before authentication, like the not-found handler's 405.
  app.addHook('onRequest', async (request) => {
    const pattern = request.routeOptions.url;
    if (pattern === undefined || !pattern.includes(':')) return;
    const fixed = routeMethods.ofFixedPath(request.url.split('?')[0] ?? '');
    if (fixed !== null && !fixed.includes(request.method)) {
      throw new NeuronError('METHOD_NOT_ALLOWED', {
        message: `${request.method} is not allowed on this path; allowed: ${fixed.join(', ')}`,
        headers: { allow: fixed.join(', ') },
      });
    }
  });
}

/**
 * The methods each registered path answers, so that a request the router found no route for can
 * be told apart: a known path with another method (405) or an unknown path (404). Paths are
 * fastify's patterns (`/v1/relationships/:id`); catch-all routes (`*`, such as CORS preflight and
 * the lazily built /docs pages) are left out, since they would make every path look known.
 */
class RouteMethods {
  readonly #routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  /** Routes without parameters, by their path. */
  readonly #fixed = new Map<string, Set<string>>();

  add(method: string | string[], url: string): void {
    if (url.includes('*')) return;
    const source = url
      .split('/')
      .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    const methods = Array.isArray(method) ? method : [method];
    if (!url.includes(':')) {
      const fixed = this.#fixed.get(url) ?? new Set<string>();
      for (const m of methods) fixed.add(m);
      this.#fixed.set(url, fixed);
    }
    const existing = this.#routes.find((route) => route.pattern.source === `^${source}$`);
    if (existing) for (const m of methods) existing.methods.add(m);
    else this.#routes.push({ pattern: new RegExp(`^${source}$`), methods: new Set(methods) });
  }

  /** The methods of the route whose pattern is exactly this path (no parameters), sorted; null when there is none. */
  ofFixedPath(path: string): string[] | null {
    const methods = this.#fixed.get(path);
    return methods ? [...methods].sort() : null;
  }

  /** The methods some route answers on this concrete path, sorted; empty for an unknown path. */
  of(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.#routes) if (route.pattern.test(path)) for (const m of route.methods) methods.add(m);
    return [...methods].sort();
  }
}

/**
 * Errors Node's HTTP parser meets before fastify sees a request. A request that took longer than
 * server.request_timeout_ms is answered with the REQUEST_TIMEOUT problem; anything else (not
 * HTTP, headers too large) as fastify would, and the connection is closed.
 */
function clientErrorHandler(error: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let head: string;
  let body: string;
  let type = PROBLEM_CONTENT_TYPE;
  // Refused before fastify made a request of it, so the request id is made here (never the client's: its headers may be half-read).
  const requestId = randomUUID();
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    head = '408 Request Timeout';
    body = JSON.stringify(
      toProblem(
        new NeuronError('REQUEST_TIMEOUT', { message: 'the request did not arrive within server.request_timeout_ms' }),
        undefined,
        requestId,
      ),
    );
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    head = '431 Request Header Fields Too Large';
    body = '{"error":"Request Header Fields Too Large","statusCode":431}';
    type = 'application/json';
  } else {
    head = '400 Bad Request';
    body = JSON.stringify(
      toProblem(new NeuronError('VALIDATION_FAILED', { message: 'the request is not valid HTTP' }), undefined, requestId),
    );
  }
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${head}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: ${type}\r\nX-Request-Id: ${requestId}\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

// ajv-formats is CommonJS; its default export is the plugin function.
const addFormats = ((addFormatsPlugin as unknown as { default?: unknown }).default ?? addFormatsPlugin) as unknown as (ajv: Ajv) => Ajv;

function schemaValidator(coerceTypes: false | 'array'): Ajv {
  const ajv = new Ajv({ removeAdditional: false, coerceTypes, useDefaults: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

/** A client that closed its connection before the request was read (it aborted mid-body): nothing to answer, nothing the operator must act on. */
function clientWentAway(error: unknown, raw: import('node:http').IncomingMessage): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ECONNRESET' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE' || raw.destroyed;
}

/** How often Node checks request deadlines: every second, so request_timeout_ms holds to within a second. */
function deadlineCheckMs(config: NeuronConfig): number {
  return Math.min(1_000, config.server.request_timeout_ms);
}

/** Maps whatever was thrown to a catalogue error without leaking its detail. */
export function toNeuronError(error: unknown): NeuronError {
  if (isNeuronError(error)) return error;
  if (isProtocolError(error)) return fromProtocolError(error);
  const fastifyError = error as Partial<FastifyError> & {
    validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>;
  };
  if (fastifyError.validation) {
    const errors = fastifyError.validation.map((issue) => ({
      path: validationPath(fastifyError.validationContext, issue),
      message: issue.message ?? 'is not valid',
    }));
    return new NeuronError('VALIDATION_FAILED', {
      message: `invalid request: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
      errors,
    });
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new NeuronError('MALFORMED_JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new NeuronError('BODY_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new NeuronError('UNSUPPORTED_MEDIA_TYPE');
    default:
      break;
  }
  if (fastifyError.statusCode === 429) return new NeuronError('RATE_LIMITED');
  if (fastifyError.statusCode === 404) return new NeuronError('NOT_FOUND');
  if (fastifyError.statusCode === 503) return new NeuronError('NOT_READY');
  if (fastifyError.statusCode === 400 && error instanceof SyntaxError) return new NeuronError('MALFORMED_JSON');
  return new NeuronError('SERVER_ERROR', { cause: error });
}

function validationPath(context: string | undefined, issue: { instancePath?: string; params?: Record<string, unknown> }): string {
  const base = (issue.instancePath ?? '').split('/').filter(Boolean).join('.');
  const extra = (issue.params?.['additionalProperty'] ?? issue.params?.['missingProperty']) as string | undefined;
  const field = [base, extra].filter(Boolean).join('.');
  return `${context ?? 'body'}${field ? `.${field}` : ''}`;
}
