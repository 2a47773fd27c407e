/**
 * The HTTP(S) server: fastify on the Neuron's single port. The handshake WebSocket shares this
 * server (see src/handshake/), routed on the upgrade event. Every answer that is an error is an
 * RFC 9457 problem document with a catalogue code.
 */
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import helmet from '@fastify/helmet';
import cors from '@fastify/cors';
import type { Logger } from 'pino';
import type { NeuronConfig } from '../config/index.ts';
import { NeuronError, PROBLEM_CONTENT_TYPE, isNeuronError, toProblem } from '../errors/index.ts';
import { healthRoutes, type ReadinessCheck } from './health.ts';

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
  /** Registered before the domain routes so every route schema reaches the OpenAPI document. */
  documentation?: FastifyPluginAsync;
  /** Domain route plugins, registered in order. */
  routes: FastifyPluginAsync[];
}

export async function createHttpApp(options: HttpAppOptions): Promise<HttpApp> {
  const { config } = options;
  const serverOptions: FastifyServerOptions = {
    loggerInstance: options.logger,
    bodyLimit: config.server.body_limit_bytes,
    requestTimeout: config.server.request_timeout_ms,
    keepAliveTimeout: config.server.keep_alive_timeout_ms,
    // Problem documents name the field; the default message would echo the offending value.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } },
    return503OnClosing: true,
    // Our own ids; request ids from clients are not trusted.
    requestIdHeader: false,
  };
  const https = options.tls ? { https: { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) } } : {};
  const app = Fastify({ ...serverOptions, ...https }).withTypeProvider<TypeBoxTypeProvider>() as unknown as HttpApp;

  app.setErrorHandler((error: FastifyError | NeuronError, request, reply) => {
    const neuronError = toNeuronError(error);
    if (neuronError.code === 'SERVER_ERROR') request.log.error({ err: error }, 'unexpected error');
    else request.log.debug({ code: neuronError.code }, 'request refused');
    for (const [name, value] of Object.entries(neuronError.headers ?? {})) reply.header(name, value);
    void reply.code(neuronError.status).type(PROBLEM_CONTENT_TYPE).send(toProblem(neuronError, request.url.split('?')[0]));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new NeuronError('ROUTE_NOT_FOUND', { message: `no route ${request.method} ${request.url.split('?')[0]}` });
    void reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(toProblem(error, request.url.split('?')[0]));
  });

  await app.register(helmet, {
    // The API reference page at /docs loads its own scripts and styles.
    contentSecurityPolicy: false,
    hsts: options.tls !== null,
  });
  await app.register(cors, {
    origin: config.api.cors_origins.length === 0 ? false : config.api.cors_origins,
    credentials: false,
  });

  if (options.documentation) await app.register(options.documentation);
  await app.register(healthRoutes(options.readiness));
  for (const routes of options.routes) await app.register(routes);
  return app;
}

/** Maps whatever was thrown to a catalogue error without leaking its detail. */
export function toNeuronError(error: unknown): NeuronError {
  if (isNeuronError(error)) return error;
  const fastifyError = error as Partial<FastifyError> & { validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }> };
  if (fastifyError.validation) {
    const errors = fastifyError.validation.map((issue) => ({
      path: validationPath(fastifyError.validationContext, issue),
      message: issue.message ?? 'is not valid',
    }));
    return new NeuronError('VALIDATION_FAILED', { message: `invalid request: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`, errors });
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
