/**
 * Every domain service of a running Neuron, built once here (and only here) over the opened
 * storage and audit log. Route plugins, the handshake and the workers receive these instances;
 * none of them builds a service of its own. The outbound policy is one object shared by every
 * outbound use (provider endpoints, webhook URLs, deliveries).
 */
import type { Logger } from 'pino';
import { AuditReadService, type AuditLog } from '../domains/audit/index.ts';
import type { NeuronConfig } from '../foundation/config/index.ts';
import type { Storage } from '../foundation/storage/index.ts';
import { OutboundPolicy } from '../foundation/outbound/index.ts';
import { ProviderService } from '../domains/providers/index.ts';
import { RelationshipService } from '../domains/relationships/index.ts';
import { BlockService } from '../domains/blocks/index.ts';
import { DirectoryService } from '../domains/directory/index.ts';
import { WebhookService } from '../domains/webhooks/index.ts';
import { ApiKeyService } from '../domains/api-keys/index.ts';
import { OperatorService } from '../domains/operators/index.ts';
import { OutboxService } from '../domains/outbox/index.ts';
import { ConsentService } from '../domains/consent/index.ts';
import { StatusService, type StatusSources } from '../domains/status/index.ts';

export interface DomainServices {
  readonly outbound: OutboundPolicy;
  readonly providers: ProviderService;
  readonly relationships: RelationshipService;
  readonly blocks: BlockService;
  readonly directory: DirectoryService;
  readonly webhooks: WebhookService;
  readonly apiKeys: ApiKeyService;
  /** Console operators and their sessions (src/domains/operators/). */
  readonly operators: OperatorService;
  /** The outbox's operator actions, provider pull feed and backlog. */
  readonly outbox: OutboxService;
  readonly consent: ConsentService;
  readonly status: StatusService;
  /** What the audit and attestation routes read of the audit log (entries, tree heads, proofs, receipts). */
  readonly auditReads: AuditReadService;
}

export interface DomainServicesOptions {
  config: NeuronConfig;
  storage: Storage;
  audit: AuditLog;
  logger: Logger;
  /** Wakes the outbox worker after a commit that queued deliveries. */
  nudgeOutbox: () => void;
  /** Called on every roster change (the registry hears of it at once). */
  onRosterChange: () => void;
  /** What `/v1/status` reports besides the outbox backlog (version, uptime, handshake load, registry). */
  statusSources: Required<StatusSources>;
}

export function buildDomainServices(options: DomainServicesOptions): DomainServices {
  const { config, storage, audit, logger } = options;
  const outbound = new OutboundPolicy(config.outbound);
  // Blocks and relationships ask each other (a block suspends relationships; resuming one checks
  // for a block); each gets only the other's narrow method, so neither domain imports the other's store.
  // (`blocks` is read only when a resume runs, long after both exist.)
  const relationships: RelationshipService = new RelationshipService({
    storage,
    audit,
    isPatientBlocked: (trx, patientAgentId) => blocks.isBlocked(trx, patientAgentId),
  });
  const blocks = new BlockService({ storage, audit, relationships });
  const outbox = new OutboxService({ storage, audit });
  const providers = new ProviderService({
    storage,
    audit,
    outbound,
    outbox,
    onOutboxWake: options.nudgeOutbox,
    onChange: options.onRosterChange,
  });
  return {
    outbound,
    providers,
    relationships,
    blocks,
    directory: new DirectoryService({ storage, audit }),
    webhooks: new WebhookService({ storage, audit, outbound }),
    apiKeys: new ApiKeyService({ storage, audit, logger }),
    operators: new OperatorService({ storage, audit, settings: config.console, logger }),
    outbox,
    consent: new ConsentService({ relationships, providers }),
    status: new StatusService({ storage, outbox, sources: options.statusSources }),
    auditReads: new AuditReadService({ storage, log: audit }),
  };
}
