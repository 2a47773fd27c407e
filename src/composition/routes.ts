/**
 * Every REST route plugin the Neuron serves, in one list. Each plugin receives the services built
 * once in services.ts (never storage), and nothing else mounts routes.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { AuditLog } from '../domains/audit/index.ts';
import type { NeuronConfig } from '../foundation/config/index.ts';
import type { OrganizationKey } from '../foundation/organization/keys.ts';
import type { ServedAgentCard } from '../network/presence/index.ts';
import type { RouteContext } from '../foundation/rest/context.ts';
import { relationshipAttestationRoutes, relationshipRoutes } from '../domains/relationships/index.ts';
import { directoryRoutes } from '../domains/directory/index.ts';
import { blockRoutes } from '../domains/blocks/index.ts';
import { auditRoutes } from '../domains/audit/routes.ts';
import { webhookRoutes } from '../domains/webhooks/index.ts';
import { apiKeyRoutes } from '../domains/api-keys/index.ts';
import { operatorRoutes } from '../domains/operators/index.ts';
import { handshakeStatsRoutes, organizationRoutes, statusRoutes, type RegistrySummary } from '../domains/status/index.ts';
import { providerRoutes } from '../domains/providers/index.ts';
import { consentRoutes } from '../domains/consent/index.ts';
import { agentCardRoutes } from '../network/presence/index.ts';
import { consoleRoutes } from '../console/plugin.ts';
import { outboxRoutes } from '../domains/outbox/index.ts';
import type { DomainServices } from './services.ts';

export interface RoutePluginsOptions {
  config: NeuronConfig;
  /** The audit log, a built service: the provider agent routes append to it. */
  audit: AuditLog;
  /** The Prometheus registry `/metrics` exposes. */
  metrics: Registry;
  services: DomainServices;
  nudgeOutbox: () => void;
  organizationKey: () => OrganizationKey;
  /** The public handshake URL (known once the server listens). */
  handshakeUrl: () => string;
  registry: () => RegistrySummary;
  /** The served agent card, or null until presence has started. */
  agentCard: () => Promise<ServedAgentCard | null>;
}

export function routePlugins(options: RoutePluginsOptions): FastifyPluginAsync[] {
  const { config, services, nudgeOutbox } = options;
  const context: RouteContext = { config, nudgeOutbox };
  const pageSize = { default: config.api.page_size_default, max: config.api.page_size_max };
  const publicKey = (): string => options.organizationKey().publicKey;
  return [
    organizationRoutes(config.organization, { handshakeUrl: options.handshakeUrl, publicKey, registry: options.registry }),
    relationshipRoutes({ ...context, service: services.relationships }),
    directoryRoutes({ ...context, service: services.directory }),
    blockRoutes({ ...context, service: services.blocks }),
    auditRoutes({ config, reads: services.auditReads }),
    webhookRoutes({ ...context, service: services.webhooks }),
    apiKeyRoutes({ ...context, service: services.apiKeys }),
    operatorRoutes(services.operators),
    handshakeStatsRoutes({ stats: services.status, maxDays: config.console.stats_max_days }),
    relationshipAttestationRoutes({
      relationships: services.relationships,
      providers: services.providers,
      key: options.organizationKey,
      receipt: (relationshipId) => services.auditReads.relationshipReceipt(relationshipId),
      organizationNpi: config.organization.npi,
    }),
    statusRoutes({ service: services.status, metrics: options.metrics }),
    providerRoutes({
      service: services.providers,
      pageSize,
      organizationPublicKey: publicKey,
      registerLimitPerMinute: config.api.register_limit_per_minute,
      audit: options.audit,
    }),
    consentRoutes({ service: services.consent }),
    agentCardRoutes({ card: options.agentCard }),
    consoleRoutes(),
    outboxRoutes({ service: services.outbox, pageSize, nudge: nudgeOutbox }),
  ];
}
