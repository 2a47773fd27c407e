/**
 * Who is calling, and what a route demands. Every route states its authentication in its route
 * config, and the authentication hooks (API keys in src/domains/api-keys/, provider CareAgent credentials
 * in src/domains/providers/) enforce it:
 *
 *   app.get('/v1/relationships', { config: { auth: { kind: 'api_key', scope: 'read' } }, schema }, handler)
 *   app.get('/v1/providers/:npi/relationships', { config: { auth: { kind: 'provider' } }, schema }, handler)
 *   app.get('/health/live', { config: { auth: { kind: 'none' } } }, handler)
 *
 * A route under /v1 without an auth config is refused (deny by default).
 *
 * app.ts decorates `request.principal` with null. Authentication hooks are application-level
 * (app.ts `hooks`) and set the principal at onRequest or preValidation; at preHandler a backstop
 * (src/http/authentication.ts) refuses with 401 any route whose auth is not `none` and whose
 * principal is still null, so a route can never run unauthenticated by accident.
 */
import type { FastifyRequest } from 'fastify';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export type RouteAuth =
  | { kind: 'none' }
  | { kind: 'api_key'; scope: Scope }
  | { kind: 'provider' }
  /** Either a provider credential or an API key with the scope. */
  | { kind: 'provider_or_api_key'; scope: Scope };

export type Principal =
  | { kind: 'api_key'; keyId: string; label: string; scopes: readonly Scope[] }
  | { kind: 'provider'; npi: string; registrationId: string | null }
  /** A console operator signed in with the session cookie (src/domains/operators/); scopes from the role. */
  | { kind: 'operator'; name: string; role: 'front-desk' | 'admin'; scopes: readonly Scope[] };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Audit actor for whoever made the request. */
export function actorOf(principal: Principal | null): string {
  if (principal === null) return 'anonymous';
  if (principal.kind === 'operator') return `operator:${principal.name}`;
  return principal.kind === 'api_key' ? `api-key:${principal.label}` : `provider:${principal.npi}`;
}

/** `admin` implies `write` implies `read`. */
export function scopeAllows(granted: readonly Scope[], needed: Scope): boolean {
  const rank: Record<Scope, number> = { read: 0, write: 1, admin: 2 };
  return granted.some((scope) => rank[scope] >= rank[needed]);
}

export function routeAuth(request: FastifyRequest): RouteAuth | undefined {
  return request.routeOptions.config.auth;
}
