/**
 * The Neuron's start steps, in order; each needs the ones before it, and stop runs them backwards
 * (src/foundation/lifecycle/components.ts):
 *
 *   storage           open the database, apply migrations
 *   organization-key  load or create the organization's Ed25519 key
 *   audit             the hash-chained audit log and its checkpoint timer
 *   services          every domain service, built once (services.ts); config provider seeds
 *   api-gateway       API key authentication, OpenAPI, metrics listener, key last-use flushing
 *   http              fastify on the single port, every route plugin from one list (routes.ts)
 *   handshake         the /ws/handshake WebSocket on the http server
 *   outbox-worker     delivery of provider notices and webhooks
 *   presence          registry registration and heartbeat, mDNS advertisement
 *
 * So stop leaves the network first (mDNS goodbye, heartbeats off), stops workers, closes open
 * handshakes with 1001 and stops accepting connections, then signs a last audit checkpoint and
 * closes the database.
 */
import path from 'node:path';
import type { Component } from '../foundation/lifecycle/components.ts';
import { openStorage } from '../foundation/storage/index.ts';
import { storageOptionsFrom } from '../foundation/storage/from-config.ts';
import { CurrentOrganizationKey, ensureOrganizationKey } from '../foundation/organization/keys.ts';
import { AuditLog, TreeHeadFile, pinGenesisKey } from '../domains/audit/index.ts';
import { createHttpApp, type HttpApp } from '../http/app.ts';
import { createApiGateway } from './gateway.ts';
import { HandshakeBroker } from '../domains/handshake/index.ts';
import { providerAuthPlugin } from '../domains/providers/index.ts';
import { OutboxWorker, deliveryResolvers } from '../domains/outbox/index.ts';
import { providerNoticeTarget } from '../domains/providers/index.ts';
import { webhookDeliveryTarget } from '../domains/webhooks/index.ts';
import { OutboundClient } from '../foundation/outbound/index.ts';
import { MIN_REGISTRY_LEASE_BASIS_MS, Presence, REGISTRY_LEASE_NAME } from '../network/presence/index.ts';
import { LeaderElector, leaseTimingFor } from '../network/cluster/index.ts';
import { handshakesFromMetrics, type RegistrySummary } from '../domains/status/index.ts';
import { buildDomainServices } from './services.ts';
import { routePlugins } from './routes.ts';
import { need, type Runtime } from './runtime.ts';

export type Step = (rt: Runtime) => Component;

export const START_STEPS: readonly Step[] = [
  storageStep,
  organizationKeyStep,
  auditStep,
  servicesStep,
  apiGatewayStep,
  httpStep,
  handshakeStep,
  outboxWorkerStep,
  presenceStep,
];

const nudgeOutbox = (rt: Runtime) => (): void => rt.outboxWorker?.nudge();

/** Presence starts last; until then the summary says the state is not known yet. */
function registrySummary(rt: Runtime): RegistrySummary {
  return (
    rt.presence?.registrySummary() ?? {
      state: rt.config.registry.enabled ? 'unknown' : 'disabled',
      registered: false,
      lastHeartbeatAt: null,
    }
  );
}

function storageStep(rt: Runtime): Component {
  return {
    name: 'storage',
    start: async () => {
      rt.storage = await openStorage(
        storageOptionsFrom(rt.loaded, {
          // An idle PostgreSQL connection that drops is replaced by the pool; say so in our log.
          onBackgroundError: (error) => rt.logger.warn({ err: error }, 'database connection'),
        }),
      );
      const { applied } = await rt.storage.migrate();
      if (applied.length > 0) rt.logger.info({ applied, database: rt.storage.description }, 'database migrations applied');
    },
    stop: async () => rt.storage?.close(),
  };
}

function organizationKeyStep(rt: Runtime): Component {
  return {
    name: 'organization-key',
    start: async () => {
      const { key, created } = await ensureOrganizationKey(need(rt.storage, 'storage').db);
      rt.organizationKey = key;
      if (created) rt.logger.info({ publicKey: key.publicKey }, 'organization key created');
    },
    stop: async () => undefined,
  };
}

function auditStep(rt: Runtime): Component {
  let checkpointTimer: NodeJS.Timeout | undefined;
  let keyReloadTimer: NodeJS.Timeout | undefined;
  let treeHeadFile: TreeHeadFile | undefined;
  return {
    name: 'audit',
    start: async () => {
      const key = need(rt.organizationKey, 'organization key');
      const dataDir = rt.loaded.paths.dataDir;
      // The verifier's trust anchor lives outside the database (docs/security.md): the genesis key,
      // from which the log's rotation entries must lead to the active one.
      const db = need(rt.storage, 'storage').db;
      const { pinned, reachable } = await pinGenesisKey(db, dataDir, key);
      if (!reachable) {
        rt.logger.error(
          { pinnedKeyId: pinned.key_id, keyId: key.id },
          'the organization key in the database is not the pinned one nor reached from it by a rotation in the audit log; its tree heads will not verify',
        );
      }
      // Another instance may rotate the key (PostgreSQL); sealing notices it at once, this picks it up
      // for notices and the served key on an instance that seals nothing meanwhile.
      keyReloadTimer = setInterval(() => {
        if (key instanceof CurrentOrganizationKey)
          key.reload(db).catch((error: unknown) => rt.logger.error({ err: error }, 'could not reload the organization key'));
      }, rt.config.audit.key_reload_interval_ms);
      keyReloadTimer.unref();
      const headFile = new TreeHeadFile({ dataDir, logger: rt.logger, syncIntervalMs: rt.config.audit.tree_head_file_sync_interval_ms });
      treeHeadFile = headFile;
      const audit = new AuditLog({
        storage: need(rt.storage, 'storage'),
        key,
        logger: rt.logger,
        dataDir,
        treeHeadFileGraceMs: rt.config.audit.tree_head_file_grace_ms,
        onTreeHead: (head) => headFile.offer(head),
      });
      rt.audit = audit;
      checkpointTimer = setInterval(() => {
        audit.checkpoint().catch((error: unknown) => rt.logger.error({ err: error }, 'audit checkpoint failed'));
      }, rt.config.audit.checkpoint_interval_ms);
      checkpointTimer.unref();
      await audit.recordOwn('neuron.started', { instance_id: rt.instanceId, version: rt.version });
    },
    stop: async () => {
      clearInterval(checkpointTimer);
      clearInterval(keyReloadTimer);
      await rt.audit?.recordOwn('neuron.stopped', { instance_id: rt.instanceId });
      // A last signed checkpoint, so the chain head at shutdown is covered by a signature.
      await rt.audit?.checkpoint();
      await treeHeadFile?.close();
    },
  };
}

/** Every domain service once; config provider seeds are added once, never over operator changes. */
function servicesStep(rt: Runtime): Component {
  return {
    name: 'services',
    start: async () => {
      rt.services = buildDomainServices({
        config: rt.config,
        storage: need(rt.storage, 'storage'),
        audit: need(rt.audit, 'audit log'),
        logger: rt.logger,
        nudgeOutbox: nudgeOutbox(rt),
        // The registry hears of roster changes at once (and at every heartbeat regardless).
        onRosterChange: () => rt.presence?.providersChanged(),
        statusSources: {
          version: rt.version,
          startedAt: () => rt.startedAt,
          handshakes: handshakesFromMetrics(rt.metrics),
          registry: () => registrySummary(rt),
        },
      });
      const seeded = await rt.services.providers.seed(rt.config.providers);
      if (seeded.length > 0) rt.logger.info({ providers: seeded }, 'providers added from the config');
    },
    stop: async () => undefined,
  };
}

function apiGatewayStep(rt: Runtime): Component {
  return {
    name: 'api-gateway',
    start: async () => {
      const services = need(rt.services, 'services');
      rt.gateway = createApiGateway({
        config: rt.config,
        audit: need(rt.audit, 'audit log'),
        logger: rt.logger,
        metrics: rt.metrics,
        version: rt.version,
        apiKeys: services.apiKeys,
        operators: services.operators,
        outbox: services.outbox,
        handshakeUrl: () => rt.address().handshakeUrl,
        registry: () => registrySummary(rt),
      });
      await rt.gateway.start();
    },
    // After http has stopped: writes the last API key use times.
    stop: async () => rt.gateway?.stop(),
  };
}

function httpStep(rt: Runtime): Component {
  return {
    name: 'http',
    start: async () => {
      const { config } = rt;
      const services = need(rt.services, 'services');
      const gateway = need(rt.gateway, 'api gateway');
      const tls =
        config.server.tls.cert_file === ''
          ? null
          : {
              certFile: path.resolve(rt.loaded.paths.baseDir, config.server.tls.cert_file),
              keyFile: path.resolve(rt.loaded.paths.baseDir, config.server.tls.key_file),
            };
      const http = await createHttpApp({
        config,
        tls,
        logger: rt.logger,
        metrics: rt.metrics,
        readiness: () => readiness(rt),
        hooks: [gateway.authentication, providerAuthPlugin(services.providers)],
        documentation: gateway.documentation,
        routes: routePlugins({
          config,
          audit: need(rt.audit, 'audit log'),
          metrics: rt.metrics,
          services,
          nudgeOutbox: nudgeOutbox(rt),
          organizationKey: () => need(rt.organizationKey, 'organization key'),
          handshakeUrl: () => rt.address().handshakeUrl,
          registry: () => registrySummary(rt),
          // Presence starts last; until then the card is not served.
          agentCard: async () => (rt.presence === undefined ? null : rt.presence.servedAgentCard()),
        }),
      });
      rt.http = http;
      await listen(http, config.server.host, config.server.port, config.handshake.max_queued);
      const bound = http.server.address();
      if (bound && typeof bound === 'object') {
        rt.boundPort = bound.port;
        rt.boundAddress = bound.address; // what mDNS may advertise
      }
    },
    stop: async () => {
      await rt.http?.close();
    },
  };
}

/** What /health/ready reports as failing; empty when ready. */
async function readiness(rt: Runtime): Promise<string[]> {
  const db = need(rt.storage, 'storage');
  const failing: string[] = [];
  if (rt.state !== 'running') failing.push(rt.state === 'stopping' ? 'shutting_down' : 'starting');
  try {
    await db.ping();
  } catch {
    failing.push('database');
  }
  // Reachable but refusing commits (a full disk): every handshake would fail.
  if (!failing.includes('database') && !(await db.writesSucceed())) failing.push('database_writes');
  return failing;
}

/**
 * The /ws/handshake WebSocket on the http server. Started after http and so stopped before it:
 * open handshakes close with 1001 and queued upgrades get 503 while the database is still open for
 * their last writes.
 */
function handshakeStep(rt: Runtime): Component {
  return {
    name: 'handshake',
    start: async () => {
      const { config } = rt;
      rt.handshake = new HandshakeBroker({
        handshake: config.handshake,
        storage: need(rt.storage, 'storage'),
        audit: need(rt.audit, 'audit log'),
        organizationKey: need(rt.organizationKey, 'organization key'),
        organizationNpi: config.organization.npi,
        pullNoticeHoldMs: config.outbox.backoff_max_ms,
        logger: rt.logger,
        metrics: rt.metrics,
        onNoticeQueued: nudgeOutbox(rt),
        trustedProxies: config.server.trusted_proxies,
      });
      rt.handshake.attach(need(rt.http, 'http server').server);
    },
    stop: async () => rt.handshake?.stop(),
  };
}

/**
 * Outbox delivery (provider notices and webhooks). Stopped before http and the database:
 * deliveries in flight are aborted and their rows given back for the next start.
 */
function outboxWorkerStep(rt: Runtime): Component {
  let outboundClient: OutboundClient | undefined;
  return {
    name: 'outbox-worker',
    start: async () => {
      // Every delivery goes through the one outbound policy, checked on the address connected to.
      outboundClient = new OutboundClient(need(rt.services, 'services').outbound);
      rt.outboxWorker = new OutboxWorker({
        storage: need(rt.storage, 'storage'),
        instanceId: rt.instanceId,
        settings: rt.config.outbox,
        outbound: outboundClient,
        audit: need(rt.audit, 'audit log'),
        resolvers: deliveryResolvers({
          key: () => need(rt.organizationKey, 'organization key'),
          providerTarget: providerNoticeTarget,
          webhookTarget: webhookDeliveryTarget,
        }),
        logger: rt.logger,
        metrics: rt.metrics,
        userAgent: `neuron/${rt.version}`,
      });
      rt.outboxWorker.start();
    },
    stop: async () => {
      await rt.outboxWorker?.stop();
      await outboundClient?.close();
    },
  };
}

/**
 * The registry client (only on the instance holding the registry lease, so instances sharing a
 * database register once and heartbeat once) and the mDNS advertisement (every instance).
 * Stopped first: goodbye packets, then heartbeats off.
 */
function presenceStep(rt: Runtime): Component {
  return {
    name: 'presence',
    start: async () => {
      const { config, logger } = rt;
      const storage = need(rt.storage, 'storage');
      const log = need(rt.audit, 'audit log');
      rt.presence = new Presence({
        config,
        storage,
        logger,
        audit: (event) => log.record(event),
        handshakeUrl: rt.address().handshakeUrl,
        publicUrl: config.server.public_url !== '' ? config.server.public_url : rt.address().url,
        version: rt.version,
        port: rt.boundPort,
        ...(rt.boundAddress !== undefined ? { boundAddress: rt.boundAddress } : {}),
        tls: config.server.tls.cert_file !== '',
        leadership: (callbacks) =>
          new LeaderElector({
            storage,
            name: REGISTRY_LEASE_NAME,
            holder: rt.instanceId,
            // Another instance takes over within one heartbeat interval when the leader dies.
            ...leaseTimingFor(Math.max(config.registry.heartbeat_interval_ms, MIN_REGISTRY_LEASE_BASIS_MS)),
            onElected: callbacks.onElected,
            onDeposed: callbacks.onDeposed,
            onError: (error) => logger.warn({ component: 'registry', err: error }, 'registry lease: could not renew; retrying'),
          }),
      });
      await rt.presence.start();
    },
    stop: async () => rt.presence?.stop(),
  };
}

/** Node's own default accept backlog. */
const DEFAULT_LISTEN_BACKLOG = 511;

/**
 * `backlog`: connections the kernel holds until the event loop accepts them. A burst of patients
 * (up to handshake.max_queued waiting upgrades) must fit while the loop is busy, or the kernel
 * drops them and their connections are reset. The kernel caps it at net.core.somaxconn.
 */
async function listen(app: HttpApp, host: string, port: number, backlog: number): Promise<void> {
  try {
    await app.listen({ host, port, backlog: Math.max(DEFAULT_LISTEN_BACKLOG, backlog) });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new ListenError(
        `port ${port} on ${host} is already in use; stop the other process or set server.port (or --port) to a free port`,
        error,
      );
    if (code === 'EACCES')
      throw new ListenError(`not permitted to listen on ${host}:${port}; use a port above 1023 or grant the capability`, error);
    if (code === 'EADDRNOTAVAIL')
      throw new ListenError(`address ${host} is not on this machine; set server.host to a local address`, error);
    throw error;
  }
}

export class ListenError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'ListenError';
  }
}
