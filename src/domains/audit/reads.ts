/**
 * What the audit routes and the attestation route read of the audit log: entries, the whole
 * chain's verification, the latest signed tree head, inclusion and consistency proofs, key
 * rotations and a relationship's receipt. Built once by the composition root, so route plugins
 * receive this service and never the storage under it.
 */
import type { Hash } from 'neuron-careagent-client/protocol';
import type { Storage } from '../../foundation/storage/index.ts';
import type { AuditEntry } from './chain.ts';
import { relationshipReceipt, type RelationshipReceipt } from './relationship-receipt.ts';
import { keyRotationProofs } from './rotation.ts';
import type { AuditLog, VerifyResult } from './service.ts';
import type { TreeHead } from './tree-head.ts';
import { latestTreeHead, storedConsistencyProof, storedInclusionProof } from './tree.ts';

export interface AuditReadServiceOptions {
  storage: Storage;
  /** The audit log whose entries are listed and verified. */
  log: Pick<AuditLog, 'list' | 'verify'>;
}

export class AuditReadService {
  readonly #storage: Storage;
  readonly #log: AuditReadServiceOptions['log'];

  constructor(options: AuditReadServiceOptions) {
    this.#storage = options.storage;
    this.#log = options.log;
  }

  /** Entries oldest first, after `after` (a seq), of one event type when given. */
  list(options: { after?: number; limit: number; eventType?: string }): Promise<AuditEntry[]> {
    return this.#log.list(options);
  }

  /** Every hash link, checkpoint and tree head checked (`neuron audit verify`). */
  verify(): Promise<VerifyResult> {
    return this.#log.verify();
  }

  latestTreeHead(): Promise<TreeHead | null> {
    return latestTreeHead(this.#storage.db);
  }

  /** RFC 9162 inclusion proof of entry `leafIndex` (0-based) in the tree of the first `treeSize` entries. */
  inclusionProof(leafIndex: number, treeSize: number): Promise<Hash[]> {
    return storedInclusionProof(this.#storage.db, leafIndex, treeSize);
  }

  /** RFC 9162 consistency proof between the trees of the first `first` and `second` entries. */
  consistencyProof(first: number, second: number): Promise<Hash[]> {
    return storedConsistencyProof(this.#storage.db, first, second);
  }

  /** The organization key rotations within the first `treeSize` entries, each with its inclusion proof. */
  keyRotations(treeSize: number): ReturnType<typeof keyRotationProofs> {
    return keyRotationProofs(this.#storage.db, treeSize);
  }

  /** The receipt of the `handshake.completed` entry that established the relationship, under the latest tree head. */
  relationshipReceipt(relationshipId: string): Promise<RelationshipReceipt> {
    return relationshipReceipt(this.#storage, relationshipId);
  }
}
