/**
 * The composition root: the one place that builds the Neuron's parts and wires them together.
 * Every domain service is built once (composition/services.ts), every route plugin is mounted
 * from one list (composition/routes.ts), and start runs the named steps of composition/steps.ts
 * in order (storage, organization key, audit, services, API gateway, http, handshake, outbox
 * worker, presence); stop runs them backwards, within server.shutdown_timeout_ms.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LoadedConfig, NeuronConfig } from './foundation/config/index.ts';
import type { Storage } from './foundation/storage/index.ts';
import type { OrganizationKey } from './foundation/organization/keys.ts';
import type { AuditLog } from './domains/audit/index.ts';
import type { HttpApp } from './http/app.ts';
import type { HandshakeBroker } from './domains/handshake/index.ts';
import type { Presence } from './network/presence/index.ts';
import { createLogger } from './foundation/observability/logger.ts';
import { createMetricsRegistry } from './foundation/observability/metrics.ts';
import { ComponentStack } from './foundation/lifecycle/components.ts';
import { HANDSHAKE_PATH } from 'neuron-careagent-client/protocol';
import { START_STEPS } from './composition/steps.ts';
import { need, type NeuronAddress, type NeuronState, type Runtime } from './composition/runtime.ts';

export { ListenError } from './composition/steps.ts';
export type { NeuronAddress, NeuronState } from './composition/runtime.ts';

export interface NeuronOptions {
  logger?: Logger;
  /** Identifies this process among instances sharing a database (outbox leases, leadership). */
  instanceId?: string;
  /** Collect Node's default process metrics (off in tests that run many Neurons in one process). */
  defaultMetrics?: boolean;
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
  const { config } = loaded;
  const logger = options.logger ?? createLogger({ level: config.logging.level, pretty: config.logging.pretty });
  const stack = new ComponentStack(logger);
  const rt: Runtime = {
    loaded,
    config,
    logger,
    instanceId: options.instanceId ?? randomUUID(),
    metrics: createMetricsRegistry({ defaultMetrics: options.defaultMetrics ?? true }),
    version: NEURON_VERSION,
    state: 'created',
    startedAt: null,
    boundPort: config.server.port,
    address: () => addressOf(config, rt.boundPort),
  };
  let stopping: Promise<void> | null = null;

  async function start(): Promise<void> {
    if (rt.state !== 'created') throw new Error(`cannot start a Neuron that is ${rt.state}`);
    rt.state = 'starting';
    try {
      for (const step of START_STEPS) await stack.start(step(rt));
      rt.state = 'running';
      rt.startedAt = new Date();
      const { url, handshakeUrl } = rt.address();
      logger.info(
        { url, handshakeUrl, database: need(rt.storage, 'storage').description, organization: config.organization.npi },
        'neuron started',
      );
    } catch (error) {
      rt.state = 'stopping';
      await stack.stopAll(config.server.shutdown_timeout_ms);
      rt.state = 'stopped';
      throw error;
    }
  }

  async function stop(): Promise<void> {
    if (rt.state === 'stopped' || rt.state === 'created') {
      rt.state = 'stopped';
      return;
    }
    if (stopping) return stopping;
    rt.state = 'stopping';
    stopping = (async () => {
      logger.info('neuron stopping');
      await stack.stopAll(config.server.shutdown_timeout_ms);
      rt.state = 'stopped';
      logger.info('neuron stopped');
    })();
    return stopping;
  }

  return {
    config,
    paths: loaded.paths,
    logger,
    instanceId: rt.instanceId,
    metrics: rt.metrics,
    get state() {
      return rt.state;
    },
    get startedAt() {
      return rt.startedAt;
    },
    get storage() {
      return need(rt.storage, 'storage');
    },
    get organizationKey() {
      return need(rt.organizationKey, 'organization key');
    },
    get audit() {
      return need(rt.audit, 'audit log');
    },
    get http() {
      return need(rt.http, 'http server');
    },
    get presence() {
      return need(rt.presence, 'presence');
    },
    get handshake() {
      return need(rt.handshake, 'handshake broker');
    },
    start,
    stop,
    address: rt.address,
  };
}

function addressOf(config: NeuronConfig, boundPort: number): NeuronAddress {
  const tls = config.server.tls.cert_file !== '';
  const host = config.server.host;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `${tls ? 'https' : 'http'}://${urlHost}:${boundPort}`;
  return { host, port: boundPort, url, handshakeUrl: handshakeUrlFor(config, url) };
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
