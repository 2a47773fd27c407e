/**
 * What every HTTP request gets at the edge, whatever route answers it: a request id (the
 * caller's X-Request-Id when it is short and plain, else a fresh UUID) echoed in the X-Request-Id
 * response header and in problem documents, and one log line when it completes. That line names
 * the route PATTERN (`/v1/providers/:registration_id/heartbeat`), never the raw path, since a path
 * segment can be a capability secret, and the query string's KEYS, never its values
 * (`?search=` holds patient names, `?api_key=` a credential).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Histogram, type Registry } from 'prom-client';

/** Characters a caller's request id may use: enough for UUIDs, ULIDs and dotted trace ids; nothing a log or header could misread. */
const REQUEST_ID_CHARACTERS = /^[A-Za-z0-9._:-]+$/;
/** Query keys logged as they are; anything else (a long or odd key could itself be a secret) is logged as this. */
const OTHER_QUERY_KEY = '(other)';
const LOGGABLE_QUERY_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
/** A request has few query keys; a flood of them is logged as a count, not listed. */
const QUERY_KEYS_LOGGED_MAX = 20;

/** The caller's X-Request-Id when it is 1..maxChars characters of REQUEST_ID_CHARACTERS; otherwise a new UUID. */
export function requestIdFrom(raw: IncomingMessage, maxChars: number): string {
  const offered = raw.headers['x-request-id'];
  if (typeof offered === 'string' && offered.length > 0 && offered.length <= maxChars && REQUEST_ID_CHARACTERS.test(offered))
    return offered;
  return randomUUID();
}

/** The distinct keys of a request URL's query string, in order; values are never looked at past their key. */
export function queryKeysOf(url: string | undefined): string[] {
  const start = url?.indexOf('?') ?? -1;
  if (url === undefined || start < 0) return [];
  const keys = new Set<string>();
  for (const key of new URLSearchParams(url.slice(start + 1)).keys()) {
    keys.add(LOGGABLE_QUERY_KEY.test(key) ? key : OTHER_QUERY_KEY);
  }
  const list = [...keys];
  return list.length > QUERY_KEYS_LOGGED_MAX
    ? [...list.slice(0, QUERY_KEYS_LOGGED_MAX), `(+${list.length - QUERY_KEYS_LOGGED_MAX} more)`]
    : list;
}

/**
 * fastify's per-request log lines, replaced: its own print the raw URL with the query string
 * (`req.url`), twice per request. One line per completed request instead, with the request id
 * under `request_id`.
 */
export class EdgeLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'request_id' });
  }

  override incomingRequest(): void {
    // The completion line says everything; a line per arrival doubled the log for nothing.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    request.log.info(
      {
        method: request.method,
        // The matched route's pattern; null when no route matched (the path itself is not logged).
        route: request.is404 ? null : (request.routeOptions.url ?? null),
        query_keys: queryKeysOf(request.raw.url),
        status: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime * 10) / 10,
        // The answer could not be written out (the client left): its code only, not an error of ours.
        ...(error ? { write_error: (error as NodeJS.ErrnoException).code ?? error.name } : {}),
      },
      'request completed',
    );
  }

  override defaultErrorLog(error: Error, request: FastifyRequest): void {
    // Only reached if the Neuron's own error handler were bypassed; fastify's version logs req.url.
    request.log.error({ err: error }, 'unexpected error');
  }
}

/** The X-Request-Id response header on every answer fastify sends (the not-found handler's too). */
export function registerRequestIdHeader(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header('x-request-id', request.id);
    return payload;
  });
}

/** Seconds; most answers take a few milliseconds, a slow database or a large page up to seconds, and request_timeout_ms caps the rest at 30 s. */
const REQUEST_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * neuron_http_request_duration_seconds{method,route,status_class}: every answer fastify sends,
 * labelled by the route PATTERN (`unmatched` when none), never the raw URL, so the label set stays
 * bounded whatever paths clients invent, and by status class (2xx, 4xx, ...).
 */
export function registerRequestMetrics(app: FastifyInstance, registry: Registry): void {
  const duration = new Histogram({
    name: 'neuron_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method, route pattern and status class',
    labelNames: ['method', 'route', 'status_class'],
    buckets: REQUEST_DURATION_BUCKETS,
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      {
        method: request.method,
        route: request.is404 ? 'unmatched' : (request.routeOptions.url ?? 'unmatched'),
        status_class: `${Math.floor(reply.statusCode / 100)}xx`,
      },
      reply.elapsedTime / 1_000,
    );
  });
}
