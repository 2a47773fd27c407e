/**
 * The console session as a principal on the REST API: src/http/authentication.ts calls
 * `operatorPrincipal` for a route that takes API keys when the request carries no API key but
 * the session cookie. An API key or provider credential, when present, always decides instead.
 *
 * A state-changing request (anything but GET, HEAD, OPTIONS) made with the cookie must carry the
 * session's CSRF token in X-CSRF-Token, checked here at onRequest, before the body is even read,
 * so a refused request changes nothing. SameSite=Strict already keeps other sites' pages from
 * sending the cookie; the token is the second, independent defence.
 */
import type { FastifyRequest } from 'fastify';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Principal } from '../../foundation/rest/principal.ts';
import { clearedSessionCookie, sessionTokenFrom } from './cookies.ts';
import { CSRF_HEADER, ROLE_SCOPES } from './schemas.ts';
import { csrfMatches, type OperatorService } from './service.ts';
import type { SessionRecord } from './store.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether the browser reached us over TLS (directly, or through a trusted proxy that says so). */
export function overTls(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

/**
 * The live session of the request's cookie, or null when there is no cookie. SESSION_EXPIRED
 * (which also clears the cookie) when the cookie names no live session.
 */
export async function sessionOf(
  service: OperatorService,
  request: FastifyRequest,
): Promise<{ token: string; session: SessionRecord } | null> {
  const token = sessionTokenFrom(request.headers.cookie);
  if (token === null) return null;
  try {
    return { token, session: await service.authenticate(token) };
  } catch (error) {
    if (error instanceof NeuronError && error.code === 'SESSION_EXPIRED') {
      throw new NeuronError('SESSION_EXPIRED', {
        message: error.message,
        headers: { 'Set-Cookie': clearedSessionCookie(overTls(request)) },
      });
    }
    throw error;
  }
}

export function requireCsrf(request: FastifyRequest, token: string): void {
  if (SAFE_METHODS.has(request.method)) return;
  const header = request.headers[CSRF_HEADER];
  if (!csrfMatches(Array.isArray(header) ? header[0] : header, token)) {
    throw new NeuronError('CSRF_REJECTED', {
      message: `a change made with the console session needs the session's csrf_token in the X-CSRF-Token header`,
    });
  }
}

/** The operator principal for the request's session cookie (CSRF checked), or null without a cookie. */
export async function operatorPrincipal(service: OperatorService, request: FastifyRequest): Promise<Principal | null> {
  const found = await sessionOf(service, request);
  if (found === null) return null;
  requireCsrf(request, found.token);
  const { session } = found;
  return { kind: 'operator', name: session.operatorName, role: session.role, scopes: ROLE_SCOPES[session.role] };
}
