/**
 * Blocking patient agents. A block and its consequences are one transaction: the block row, the
 * public keys the agent presented here (so the block holds against them under any agent id), every
 * active relationship of that agent suspended, the `patient.blocked` webhook queued and the audit
 * entry. Removing a block does not resume anything: suspended relationships stay on hold until
 * resumed one by one (POST /v1/relationships/:id/resume), so unblocking is never a surprise.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import { isoNow, type Db, type Storage } from '../../foundation/storage/index.ts';
import type { AuditLog } from '../audit/index.ts';
import { publishWebhookEvent } from '../webhooks/index.ts';
import { directoryKeyOf } from '../directory/index.ts';
import { publicKeysPresentedBy, type RelationshipService } from '../relationships/index.ts';
import { blockKeysOf, deleteBlock, insertBlock, isBlocked, listBlocks, unblockKeysOf, type Block } from './store.ts';

export interface BlockActor {
  actor: string;
  keyId: string | undefined;
}

export interface BlockServiceOptions {
  storage: Storage;
  audit: AuditLog;
  /** Suspends the blocked agent's relationships in the block's own transaction. */
  relationships: Pick<RelationshipService, 'suspendAllForPatient'>;
  now?: () => number;
}

export class BlockService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;
  readonly #relationships: BlockServiceOptions['relationships'];
  readonly #now: () => number;

  constructor(options: BlockServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
    this.#relationships = options.relationships;
    this.#now = options.now ?? Date.now;
  }

  /** Whether the agent id is blocked, read in the caller's transaction (resuming a relationship). */
  isBlocked(trx: Db, patientAgentId: string): Promise<boolean> {
    return isBlocked(trx, patientAgentId);
  }

  list(options: { after?: string; limit: number }): Promise<{ items: Block[]; next: string | null }> {
    return listBlocks(this.#storage.db, options);
  }

  /** Throws CONFLICT when the agent is already blocked. */
  async block(
    patientAgentId: string,
    reason: string,
    by: BlockActor,
  ): Promise<{ block: Block; suspendedRelationshipIds: string[]; blockedPublicKeys: string[]; webhooks: number }> {
    const now = this.#now();
    const at = isoNow(now);
    return this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      const block: Block = { patientAgentId, reason, blockedBy: by.actor, createdAt: at };
      if (!(await insertBlock(trx, block))) throw new NeuronError('CONFLICT', { message: 'this patient agent is already blocked' });
      const blockedPublicKeys = await blockKeysOf(trx, patientAgentId, await keysPresentedBy(trx, patientAgentId), at);
      const suspendedRelationshipIds = await this.#relationships.suspendAllForPatient(trx, patientAgentId, `blocked: ${reason}`, at);
      const webhooks = await publishWebhookEvent(
        trx,
        'patient.blocked',
        {
          patient_agent_id: patientAgentId,
          reason,
          blocked_at: at,
          suspended_relationship_ids: suspendedRelationshipIds,
        },
        at,
      );
      await this.#audit.append(
        trx,
        {
          type: 'patient.blocked',
          actor: by.actor,
          details: {
            patient_agent_id: patientAgentId,
            reason,
            suspended_relationship_ids: suspendedRelationshipIds,
            blocked_public_keys: blockedPublicKeys,
            key_id: by.keyId,
          },
        },
        now,
      );
      return { block, suspendedRelationshipIds, blockedPublicKeys, webhooks };
    });
  }

  /** Throws NOT_FOUND when the agent is not blocked. */
  async unblock(patientAgentId: string, by: BlockActor): Promise<void> {
    const now = this.#now();
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      if (!(await deleteBlock(trx, patientAgentId))) throw new NeuronError('NOT_FOUND', { message: 'this patient agent is not blocked' });
      await unblockKeysOf(trx, patientAgentId);
      await this.#audit.append(
        trx,
        { type: 'patient.unblocked', actor: by.actor, details: { patient_agent_id: patientAgentId, key_id: by.keyId } },
        now,
      );
    });
  }
}

/** The public keys this agent presented here: in its relationships, and in its directory entry. */
async function keysPresentedBy(trx: Db, patientAgentId: string): Promise<string[]> {
  const directoryKey = await directoryKeyOf(trx, patientAgentId);
  return [...(await publicKeysPresentedBy(trx, patientAgentId)), ...(directoryKey === null ? [] : [directoryKey])];
}
