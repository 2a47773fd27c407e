/**
 * What the REST route plugins share, and small helpers every route uses: the audit actor of the
 * caller and the common route options.
 */
import type { FastifyRequest } from 'fastify';
import type { NeuronConfig } from '../config/index.ts';
import type { Storage } from '../storage/index.ts';
import { actorOf, type Scope } from './principal.ts';

/** What the route plugins that still read their own domain's rows are given (a domain adds its own service to it). */
export interface ApiDeps {
  config: NeuronConfig;
  storage: Storage;
  /** Called after a commit that queued webhook deliveries, so they go out at once. */
  nudgeOutbox: () => void;
  now?: () => number;
}

/**
 * What every REST route plugin may use besides the service it is given: settings and the outbox
 * nudge. Never storage: a route asks its domain's service (built once in the composition root).
 */
export type RouteContext = Pick<ApiDeps, 'config' | 'nudgeOutbox'>;

/** Who made the request, for the audit log: `api-key:<label>` (and the key id in details). */
export interface Actor {
  actor: string;
  keyId: string | undefined;
}

export function actorFor(request: FastifyRequest): Actor {
  const principal = request.principal;
  return { actor: actorOf(principal), keyId: principal?.kind === 'api_key' ? principal.keyId : undefined };
}

export function apiKeyAuth(scope: Scope): { auth: { kind: 'api_key'; scope: Scope } } {
  return { auth: { kind: 'api_key', scope } };
}
