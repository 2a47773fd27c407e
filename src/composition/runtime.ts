/**
 * What the start steps (steps.ts) build and share: each step fills in its part of the runtime,
 * and later steps (and the Neuron's getters) read it through `need`, which names what is missing
 * when something is read before the step that makes it has run.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LoadedConfig, NeuronConfig } from '../foundation/config/index.ts';
import type { Storage } from '../foundation/storage/index.ts';
import type { OrganizationKey } from '../foundation/organization/keys.ts';
import type { AuditLog } from '../domains/audit/index.ts';
import type { HttpApp } from '../http/app.ts';
import type { ApiGateway } from './gateway.ts';
import type { HandshakeBroker } from '../domains/handshake/index.ts';
import type { OutboxWorker } from '../domains/outbox/index.ts';
import type { Presence } from '../network/presence/index.ts';
import type { DomainServices } from './services.ts';

export type NeuronState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface NeuronAddress {
  host: string;
  port: number;
  /** Base URL of the REST API as bound locally. */
  url: string;
  /** The public handshake URL advertised to the registry, over mDNS and in /v1/organization. */
  handshakeUrl: string;
}

export interface Runtime {
  readonly loaded: LoadedConfig;
  readonly config: NeuronConfig;
  readonly logger: Logger;
  readonly instanceId: string;
  readonly metrics: Registry;
  readonly version: string;
  state: NeuronState;
  startedAt: Date | null;
  /** The port actually bound (config.server.port may be 0). */
  boundPort: number;
  /** The address actually bound, once listening (mDNS advertises only what is bound). */
  boundAddress?: string;
  address(): NeuronAddress;
  storage?: Storage;
  organizationKey?: OrganizationKey;
  audit?: AuditLog;
  services?: DomainServices;
  gateway?: ApiGateway;
  http?: HttpApp;
  handshake?: HandshakeBroker;
  outboxWorker?: OutboxWorker;
  presence?: Presence;
}

export function need<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`${name} is not available before the Neuron has started`);
  return value;
}
