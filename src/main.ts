/**
 * The composition root: the only place that wires the Neuron's parts together.
 *
 * Start order (each step needs the ones before it):
 *   1. storage        open the database, apply migrations
 *   2. keys           load or create the organization's Ed25519 key
 *   3. audit          the hash-chained audit log and its checkpoint timer
 *   4. domains        providers, relationships, directory, API keys (services over storage)
 *   5. http           fastify on the single port, with the handshake WebSocket on upgrade
 *   6. workers        outbox delivery
 *   7. presence       registry registration and heartbeat, mDNS advertisement
 * Stop runs the same list backwards: leave the network first (mDNS goodbye, heartbeats off),
 * stop workers, stop accepting connections and close open handshakes with 1001, then sign a last
 * audit checkpoint and close the database.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LoadedConfig, NeuronConfig } from './config/index.ts';
import { openStorage, type Storage } from './storage/index.ts';
import { storageOptionsFrom } from './storage/from-config.ts';
import { ensureOrganizationKey, type OrganizationKey } from './organization/keys.ts';
import { AuditLog, TreeHeadFile, pinOrganizationKey } from './audit/index.ts';
import { createHttpApp, type HttpApp } from './api/app.ts';
import { createApiGateway, type ApiGateway } from './api/gateway.ts';
import { createLogger } from './observability/logger.ts';
import { createMetricsRegistry } from './observability/metrics.ts';
import { ComponentStack } from './lifecycle/components.ts';
import { HANDSHAKE_PATH } from 'neuron-careagent-client/protocol';
import { HandshakeBroker } from './handshake/index.ts';
import { ProviderService, providerAuthPlugin, providerRoutes } from './providers/index.ts';
import { consentRoutes } from './consent/routes.ts';
import { consoleRoutes } from './console/plugin.ts';
import { OutboxWorker, defaultResolvers, outboxRoutes } from './outbox/index.ts';
import { OutboundClient, OutboundPolicy } from './outbound/index.ts';
import { MIN_REGISTRY_LEASE_BASIS_MS, Presence, REGISTRY_LEASE_NAME, agentCardRoutes } from './presence/index.ts';
import { LeaderElector, leaseTimingFor } from './cluster/index.ts';

export type NeuronState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface NeuronOptions {
  logger?: Logger;
  /** Identifies this process among instances sharing a database (outbox leases, leadership). */
  instanceId?: string;
  /** Collect Node's default process metrics (off in tests that run many Neurons in one process). */
  defaultMetrics?: boolean;
}

export interface NeuronAddress {
  host: string;
  port: number;
  /** Base URL of the REST API as bound locally. */
  url: string;
  /** The public handshake URL advertised to the registry, over mDNS and in /v1/organization. */
  handshakeUrl: string;
}

export interface Neuron {
  readonly config: NeuronConfig;
  readonly paths: LoadedConfig['paths'];
  readonly logger: Logger;
  readonly instanceId: string;
  readonly metrics: Registry;
  readonly state: NeuronState;
  readonly startedAt: Date | null;
  /** Available once started. */
  readonly storage: Storage;
  readonly organizationKey: OrganizationKey;
  readonly audit: AuditLog;
  readonly http: HttpApp;
  /** The consent handshake broker on `/ws/handshake` (a ProtocolServer). */
  readonly handshake: HandshakeBroker;
  /** Registry client and mDNS advertisement: `registryStatus()`, `providersChanged()`. */
  readonly presence: Presence;
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): NeuronAddress;
}

export function createNeuron(loaded: LoadedConfig, options: NeuronOptions = {}): Neuron {
  const { config, paths } = loaded;
  const logger = options.logger ?? createLogger({ level: config.logging.level, pretty: config.logging.pretty });
  const instanceId = options.instanceId ?? randomUUID();
  const metrics = createMetricsRegistry({ defaultMetrics: options.defaultMetrics ?? true });
  const stack = new ComponentStack(logger);

  let state: NeuronState = 'created';
  let startedAt: Date | null = null;
  let storage: Storage | undefined;
  let organizationKey: OrganizationKey | undefined;
  let audit: AuditLog | undefined;
  let http: HttpApp | undefined;
  let handshake: HandshakeBroker | undefined;
  let providers: ProviderService | undefined;
  let outboxWorker: OutboxWorker | undefined;
  let presence: Presence | undefined;
  let boundPort = config.server.port;
  let boundAddress: string | undefined;
  let stopping: Promise<void> | null = null;

  const need = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`${name} is not available before the Neuron has started`);
    return value;
  };

  const address = (): NeuronAddress => {
    const tls = config.server.tls.cert_file !== '';
    const host = config.server.host;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const url = `${tls ? 'https' : 'http'}://${urlHost}:${boundPort}`;
    return { host, port: boundPort, url, handshakeUrl: handshakeUrlFor(config, url) };
  };

  async function start(): Promise<void> {
    if (state !== 'created') throw new Error(`cannot start a Neuron that is ${state}`);
    state = 'starting';
    try {
      // 1. storage
      await stack.start({
        name: 'storage',
        start: async () => {
          storage = await openStorage(storageOptionsFrom(loaded, {
            // An idle PostgreSQL connection that drops is replaced by the pool; say so in our log.
            onBackgroundError: (error) => logger.warn({ err: error }, 'database connection'),
          }));
          const { applied } = await storage.migrate();
          if (applied.length > 0) logger.info({ applied, database: storage.description }, 'database migrations applied');
        },
        stop: async () => storage?.close(),
      });
      const db = need(storage, 'storage');

      // 2. keys
      await stack.start({
        name: 'organization-key',
        start: async () => {
          const { key, created } = await ensureOrganizationKey(db.db);
          organizationKey = key;
          if (created) logger.info({ publicKey: key.publicKey }, 'organization key created');
        },
        stop: async () => undefined,
      });

      // 3. audit
      let checkpointTimer: NodeJS.Timeout | undefined;
      let treeHeadFile: TreeHeadFile | undefined;
      await stack.start({
        name: 'audit',
        start: async () => {
          const key = need(organizationKey, 'organization key');
          // The verifier's trust anchor lives outside the database (docs/security.md).
          const pinned = pinOrganizationKey(paths.dataDir, key);
          if (pinned.public_key !== key.publicKey) logger.error({ pinnedKeyId: pinned.key_id, keyId: key.id }, 'the organization key in the database is not the one pinned in the data directory; its tree heads will not verify');
          treeHeadFile = new TreeHeadFile({ dataDir: paths.dataDir, logger });
          const headFile = treeHeadFile;
          audit = new AuditLog(db, key, logger, { dataDir: paths.dataDir, treeHeadFileGraceMs: config.audit.tree_head_file_grace_ms, onTreeHead: (head) => headFile.offer(head) });
          checkpointTimer = setInterval(() => {
            audit?.checkpoint().catch((error: unknown) => logger.error({ err: error }, 'audit checkpoint failed'));
          }, config.audit.checkpoint_interval_ms);
          checkpointTimer.unref();
          await audit.record({ type: 'neuron.started', actor: 'system', details: { instance_id: instanceId, version: NEURON_VERSION } });
        },
        stop: async () => {
          clearInterval(checkpointTimer);
          await audit?.record({ type: 'neuron.stopped', actor: 'system', details: { instance_id: instanceId } });
          // A last signed checkpoint, so the chain head at shutdown is covered by a signature.
          await audit?.checkpoint();
          await treeHeadFile?.close();
        },
      });

      // 4. domains (services over storage) are created here as they are added.
      // 4a. providers: the roster service; config seeds are added once, never over operator changes.
      const nudgeOutbox = (): void => outboxWorker?.nudge();
      await stack.start({
        name: 'providers',
        start: async () => {
          providers = new ProviderService({
            storage: db,
            audit: need(audit, 'audit log'),
            outbound: new OutboundPolicy(config.outbound),
            onOutboxWake: nudgeOutbox,
            // The registry hears of roster changes at once (and at every heartbeat regardless).
            onChange: () => presence?.providersChanged(),
          });
          const seeded = await providers.seed(config.providers);
          if (seeded.length > 0) logger.info({ providers: seeded }, 'providers added from the config');
        },
        stop: async () => undefined,
      });
      const roster = need(providers, 'providers');

      let gateway: ApiGateway | undefined;
      await stack.start({
        name: 'api-gateway',
        start: async () => {
          gateway = createApiGateway({
            config,
            storage: db,
            audit: need(audit, 'audit log'),
            logger,
            metrics,
            version: NEURON_VERSION,
            publicKey: () => need(organizationKey, 'organization key').publicKey,
            handshakeUrl: () => address().handshakeUrl,
            organizationKey: () => need(organizationKey, 'organization key'),
            // Presence starts last (step 7); until then the summary says the state is not known yet.
            registry: () => presence?.registrySummary() ?? { state: config.registry.enabled ? 'unknown' : 'disabled', registered: false, lastHeartbeatAt: null },
            startedAt: () => startedAt,
            nudgeOutbox,
          });
          await gateway.start();
        },
        // After http has stopped: writes the last API key use times.
        stop: async () => gateway?.stop(),
      });
      const api = need(gateway, 'api gateway');

      // 5. http
      await stack.start({
        name: 'http',
        start: async () => {
          const tls = config.server.tls.cert_file === '' ? null : {
            certFile: path.resolve(paths.baseDir, config.server.tls.cert_file),
            keyFile: path.resolve(paths.baseDir, config.server.tls.key_file),
          };
          http = await createHttpApp({
            config,
            tls,
            logger,
            metrics,
            readiness: async () => {
              const failing: string[] = [];
              if (state !== 'running') failing.push(state === 'stopping' ? 'shutting_down' : 'starting');
              try {
                await db.ping();
              } catch {
                failing.push('database');
              }
              // Reachable but refusing commits (a full disk): every handshake would fail.
              if (!failing.includes('database') && !(await db.writesSucceed())) failing.push('database_writes');
              return failing;
            },
            hooks: [api.authentication, providerAuthPlugin(roster)],
            documentation: api.documentation,
            routes: [
              ...api.routes,
              providerRoutes({
                service: roster,
                pageSize: { default: config.api.page_size_default, max: config.api.page_size_max },
                organizationPublicKey: () => need(organizationKey, 'organization key').publicKey,
                registerLimitPerMinute: config.api.register_limit_per_minute,
                audit: need(audit, 'audit log'),
              }),
              consentRoutes({ storage: db }),
              // Presence starts last (step 7); until then the card is not served.
              agentCardRoutes({ card: async () => (presence === undefined ? null : presence.servedAgentCard()) }),
              consoleRoutes(),
              outboxRoutes({ storage: db, audit: need(audit, 'audit log'), pageSize: { default: config.api.page_size_default, max: config.api.page_size_max }, nudge: nudgeOutbox }),
            ],
          });
          await listen(http, config.server.host, config.server.port, config.handshake.max_queued);
          const bound = http.server.address();
          if (bound && typeof bound === 'object') boundPort = bound.port;
          if (bound && typeof bound === 'object') boundAddress = bound.address; // what mDNS may advertise
        },
        stop: async () => {
          await http?.close();
        },
      });

      // 5b. handshake: the /ws/handshake WebSocket on the http server. Started after http and so
      // stopped before it: open handshakes close with 1001 and queued upgrades get 503 while the
      // database is still open for their last writes.
      await stack.start({
        name: 'handshake',
        start: async () => {
          handshake = new HandshakeBroker({
            handshake: config.handshake,
            storage: db,
            audit: need(audit, 'audit log'),
            organizationKey: need(organizationKey, 'organization key'),
            organizationNpi: config.organization.npi,
            pullNoticeHoldMs: config.outbox.backoff_max_ms,
            logger,
            metrics,
            onNoticeQueued: nudgeOutbox,
            trustedProxies: config.server.trusted_proxies,
          });
          handshake.attach(need(http, 'http server').server);
        },
        stop: async () => handshake?.stop(),
      });

      // 6. workers: outbox delivery (provider notices and webhooks). Stopped before http and the
      // database: deliveries in flight are aborted and their rows given back for the next start.
      let outboundClient: OutboundClient | undefined;
      await stack.start({
        name: 'outbox-worker',
        start: async () => {
          // Every delivery goes through the outbound policy, checked on the address connected to.
          outboundClient = new OutboundClient(new OutboundPolicy(config.outbound));
          outboxWorker = new OutboxWorker({
            storage: db,
            instanceId,
            settings: config.outbox,
            outbound: outboundClient,
            audit: need(audit, 'audit log'),
            resolvers: defaultResolvers(() => need(organizationKey, 'organization key')),
            logger,
            metrics,
            userAgent: `neuron/${NEURON_VERSION}`,
          });
          outboxWorker.start();
        },
        stop: async () => {
          await outboxWorker?.stop();
          await outboundClient?.close();
        },
      });

      // 7. presence: the registry client (only on the instance holding the registry lease, so
      // instances sharing a database register once and heartbeat once) and the mDNS
      // advertisement (every instance). Stopped first: goodbye packets, then heartbeats off.
      await stack.start({
        name: 'presence',
        start: async () => {
          const log = need(audit, 'audit log');
          presence = new Presence({
            config,
            storage: db,
            logger,
            audit: (event) => log.record(event),
            handshakeUrl: address().handshakeUrl,
            publicUrl: config.server.public_url !== '' ? config.server.public_url : address().url,
            version: NEURON_VERSION,
            port: boundPort,
            boundAddress,
            tls: config.server.tls.cert_file !== '',
            leadership: (callbacks) =>
              new LeaderElector({
                storage: db,
                name: REGISTRY_LEASE_NAME,
                holder: instanceId,
                // Another instance takes over within one heartbeat interval when the leader dies.
                ...leaseTimingFor(Math.max(config.registry.heartbeat_interval_ms, MIN_REGISTRY_LEASE_BASIS_MS)),
                onElected: callbacks.onElected,
                onDeposed: callbacks.onDeposed,
                onError: (error) => logger.warn({ component: 'registry', err: error }, 'registry lease: could not renew; retrying'),
              }),
          });
          await presence.start();
        },
        stop: async () => presence?.stop(),
      });

      state = 'running';
      startedAt = new Date();
      logger.info({ url: address().url, handshakeUrl: address().handshakeUrl, database: db.description, organization: config.organization.npi }, 'neuron started');
    } catch (error) {
      state = 'stopping';
      await stack.stopAll(config.server.shutdown_timeout_ms);
      state = 'stopped';
      throw error;
    }
  }

  async function stop(): Promise<void> {
    if (state === 'stopped' || state === 'created') {
      state = 'stopped';
      return;
    }
    if (stopping) return stopping;
    state = 'stopping';
    stopping = (async () => {
      logger.info('neuron stopping');
      await stack.stopAll(config.server.shutdown_timeout_ms);
      state = 'stopped';
      logger.info('neuron stopped');
    })();
    return stopping;
  }

  return {
    config,
    paths,
    logger,
    instanceId,
    metrics,
    get state() {
      return state;
    },
    get startedAt() {
      return startedAt;
    },
    get storage() {
      return need(storage, 'storage');
    },
    get organizationKey() {
      return need(organizationKey, 'organization key');
    },
    get audit() {
      return need(audit, 'audit log');
    },
    get http() {
      return need(http, 'http server');
    },
    get presence() {
      return need(presence, 'presence');
    },
    get handshake() {
      return need(handshake, 'handshake broker');
    },
    start,
    stop,
    address,
  };
}

export const NEURON_VERSION = '0.1.0';

/** ws(s)://host:port/ws/handshake, from server.public_url when set, else from the bound address. */
export function handshakeUrlFor(config: NeuronConfig, localUrl: string): string {
  const base = new URL(config.server.public_url !== '' ? config.server.public_url : localUrl);
  base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  base.pathname = HANDSHAKE_PATH;
  base.search = '';
  base.hash = '';
  return base.toString();
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
    if (code === 'EADDRINUSE') throw new ListenError(`port ${port} on ${host} is already in use; stop the other process or set server.port (or --port) to a free port`, error);
    if (code === 'EACCES') throw new ListenError(`not permitted to listen on ${host}:${port}; use a port above 1023 or grant the capability`, error);
    if (code === 'EADDRNOTAVAIL') throw new ListenError(`address ${host} is not on this machine; set server.host to a local address`, error);
    throw error;
  }
}

export class ListenError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'ListenError';
  }
}
