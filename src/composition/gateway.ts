/**
 * The third-party API gateway's edge, around the services the composition root built: the
 * authentication hook (API keys, console operator sessions), the OpenAPI document and reference
 * page, the loopback metrics listener and the API keys' last-use flushing. The routes themselves
 * are mounted from the one list in src/composition/routes.ts.
 *
 *   const gateway = createApiGateway({...});   // after the domain services
 *   await gateway.start();                     // last-use flush timer, loopback metrics listener
 *   createHttpApp({ hooks: [gateway.authentication], documentation: gateway.documentation, routes })
 *   await gateway.stop();                      // after http has stopped: final last-use flush
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditLog } from '../domains/audit/index.ts';
import type { NeuronConfig } from '../foundation/config/index.ts';
import { looksLikeApiKey, type ApiKeyService } from '../domains/api-keys/index.ts';
import { registerServiceMetrics } from '../foundation/observability/service-metrics.ts';
import { startMetricsListener, type RegistrySummary } from '../domains/status/index.ts';
import { operatorPrincipal, type OperatorService } from '../domains/operators/index.ts';
import type { OutboxService } from '../domains/outbox/index.ts';
import { authentication } from '../http/authentication.ts';
import { documentation } from './documentation.ts';

export interface ApiGatewayOptions {
  config: NeuronConfig;
  audit: AuditLog;
  logger: Logger;
  metrics: Registry;
  version: string;
  apiKeys: ApiKeyService;
  operators: OperatorService;
  /** Counts the outbox's backlog for the metrics gauges. */
  outbox: Pick<OutboxService, 'deliveryCounts'>;
  /** The public handshake URL (known once the server listens). */
  handshakeUrl: () => string;
  /** Registry presence, for the heartbeat gauge. */
  registry: () => RegistrySummary;
}

export interface ApiGateway {
  /** App-level hooks: register before any route (app.ts `hooks`). */
  readonly authentication: FastifyPluginAsync;
  readonly documentation: FastifyPluginAsync;
  /** Port of the loopback metrics listener, or null when api.metrics_port is 0. */
  metricsPort(): number | null;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createApiGateway(options: ApiGatewayOptions): ApiGateway {
  const { config, apiKeys, operators } = options;
  let metricsListener: Awaited<ReturnType<typeof startMetricsListener>> | null = null;
  // Build, outbox and registry-heartbeat gauges, read when scraped.
  registerServiceMetrics(options.metrics, {
    version: options.version,
    outboxCounts: () => options.outbox.deliveryCounts(),
    lastHeartbeatAt: () => options.registry().lastHeartbeatAt,
  });

  return {
    authentication: authentication({
      operatorSession: (request) => operatorPrincipal(operators, request),
      apiKeys,
      looksLikeApiKey,
      audit: options.audit,
      logger: options.logger,
      rateLimitPerMinute: config.api.rate_limit_per_minute,
      authFailureLimitPerMinute: config.api.auth_failure_limit_per_minute,
      metrics: options.metrics,
    }),
    documentation: documentation({
      version: options.version,
      organizationName: config.organization.name,
      enabled: config.api.docs_enabled,
      // http(s)://host:port of the handshake URL, which already follows server.public_url.
      serverUrl: () => {
        const handshake = new URL(options.handshakeUrl());
        return `${handshake.protocol === 'wss:' ? 'https:' : 'http:'}//${handshake.host}`;
      },
      tls: config.server.tls.cert_file !== '',
    }),
    metricsPort: () => metricsListener?.port ?? null,
    async start() {
      if (config.api.metrics_port !== 0) {
        try {
          metricsListener = await startMetricsListener(options.metrics, config.api.metrics_port);
        } catch (error) {
          throw new Error(
            `cannot serve metrics on 127.0.0.1:${config.api.metrics_port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); choose a free api.metrics_port or set it to 0`,
            { cause: error },
          );
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
