/**
 * The third-party API gateway, assembled for the composition root (src/main.ts): API keys and
 * their last-use flushing, the authentication hook, the OpenAPI document and reference page, and
 * the REST route plugins of the organization-facing domains. Provider routes are added by
 * src/providers/ beside these.
 *
 *   const gateway = createApiGateway({...});   // step 4 (domains)
 *   await gateway.start();                     // last-use flush timer, loopback metrics listener
 *   createHttpApp({ hooks: [gateway.authentication], documentation: gateway.documentation,
 *                   routes: [...gateway.routes, ...] })
 *   await gateway.stop();                      // after http has stopped: final last-use flush
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';
import type { NeuronConfig } from '../config/index.ts';
import type { Storage } from '../storage/index.ts';
import { ApiKeyService } from '../api-keys/service.ts';
import { apiKeyRoutes } from '../api-keys/routes.ts';
import { relationshipRoutes } from '../relationships/routes.ts';
import { directoryRoutes } from '../directory/routes.ts';
import { blockRoutes } from '../blocks/routes.ts';
import { auditRoutes } from '../audit/routes.ts';
import { webhookRoutes } from '../webhooks/routes.ts';
import { statusRoutes } from '../status/routes.ts';
import { handshakeStatsRoutes } from '../status/handshake-stats.ts';
import { relationshipAttestationRoutes } from '../relationships/attestation-route.ts';
import type { OrganizationKey } from '../organization/keys.ts';
import { startMetricsListener } from '../status/metrics-listener.ts';
import { handshakesFromMetrics, placeholderRegistry, type HandshakeLoad, type RegistrySummary } from '../status/service.ts';
import { OperatorService, operatorPrincipal, operatorRoutes } from '../operators/index.ts';
import { authentication } from './authentication.ts';
import { documentation } from './documentation.ts';
import { organizationRoutes } from './organization.ts';
import type { ApiDeps } from './context.ts';

export interface ApiGatewayOptions {
  config: NeuronConfig;
  storage: Storage;
  audit: AuditLog;
  logger: Logger;
  metrics: Registry;
  version: string;
  /** The organization's public key (base64url). */
  publicKey: () => string;
  /** The public handshake URL (known once the server listens). */
  handshakeUrl: () => string;
  startedAt: () => Date | null;
  /** Handshake load; default: the handshake broker's gauges in `metrics`. */
  handshakes?: () => Promise<HandshakeLoad | null> | HandshakeLoad | null;
  /** Registry presence; default: `disabled` or `unknown` until the registry service is wired. */
  registry?: () => RegistrySummary;
  /** The outbox worker's nudge, so webhooks queued by an API change go out at once. */
  nudgeOutbox?: () => void;
  /** The organization's signing key, for attestations re-issued on request; without it that route is absent. */
  organizationKey?: () => OrganizationKey;
}

export interface ApiGateway {
  readonly apiKeys: ApiKeyService;
  /** Console operators and their sessions (src/operators/). */
  readonly operators: OperatorService;
  /** App-level hooks: register before any route (app.ts `hooks`). */
  readonly authentication: FastifyPluginAsync;
  readonly documentation: FastifyPluginAsync;
  readonly routes: FastifyPluginAsync[];
  /** Port of the loopback metrics listener, or null when api.metrics_port is 0. */
  metricsPort(): number | null;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createApiGateway(options: ApiGatewayOptions): ApiGateway {
  const { config } = options;
  const apiKeys = new ApiKeyService({ storage: options.storage, audit: options.audit, logger: options.logger });
  const operators = new OperatorService({ storage: options.storage, audit: options.audit, settings: config.console, logger: options.logger });
  const registry = options.registry ?? placeholderRegistry(config.registry.enabled);
  const deps: ApiDeps = {
    config,
    storage: options.storage,
    audit: options.audit,
    nudgeOutbox: () => options.nudgeOutbox?.(),
  };
  let metricsListener: Awaited<ReturnType<typeof startMetricsListener>> | null = null;

  return {
    apiKeys,
    operators,
    authentication: authentication({
      operatorSession: (request) => operatorPrincipal(operators, request),
      apiKeys,
      audit: options.audit,
      logger: options.logger,
      rateLimitPerMinute: config.api.rate_limit_per_minute,
      authFailureLimitPerMinute: config.api.auth_failure_limit_per_minute,
      metrics: options.metrics,
    }),
    documentation: documentation({ version: options.version, organizationName: config.organization.name, enabled: config.api.docs_enabled }),
    routes: [
      organizationRoutes(deps, { handshakeUrl: options.handshakeUrl, publicKey: options.publicKey, registry }),
      relationshipRoutes(deps),
      directoryRoutes(deps),
      blockRoutes(deps),
      auditRoutes(deps),
      webhookRoutes(deps),
      apiKeyRoutes(deps, apiKeys),
      operatorRoutes(operators),
      handshakeStatsRoutes(deps),
      ...(options.organizationKey === undefined ? [] : [relationshipAttestationRoutes(deps, { key: options.organizationKey })]),
      statusRoutes(deps, {
        version: options.version,
        startedAt: options.startedAt,
        handshakes: options.handshakes ?? handshakesFromMetrics(options.metrics),
        registry,
      }, options.metrics),
    ],
    metricsPort: () => metricsListener?.port ?? null,
    async start() {
      if (config.api.metrics_port !== 0) {
        try {
          metricsListener = await startMetricsListener(options.metrics, config.api.metrics_port);
        } catch (error) {
          throw new Error(`cannot serve metrics on 127.0.0.1:${config.api.metrics_port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); choose a free api.metrics_port or set it to 0`, { cause: error });
        }
        options.logger.info({ url: `http://127.0.0.1:${metricsListener.port}/metrics` }, 'metrics listener on loopback');
      }
      apiKeys.startFlushing(config.api.key_last_used_flush_ms);
    },
    async stop() {
      await metricsListener?.close();
      metricsListener = null;
      await apiKeys.stopFlushing();
    },
  };
}
