/**
 * Relationship rules for a completed handshake, run inside the caller's transaction:
 *
 * - an active relationship for this patient agent id and provider held under a different key is
 *   IDENTITY_MISMATCH (the message never names the relationship or the key);
 * - under the same key it is `existing`: the same relationship id comes back, only
 *   last_handshake_at moves (the stored consent, actions and endpoint stay as first recorded);
 * - a suspended relationship is on hold until the organization lifts it: the handshake is
 *   refused with BLOCKED and neither revives it nor creates a second one beside it;
 * - otherwise (none, or only terminated ones: terminated is final and never revived) a new
 *   active relationship is created. When a concurrent handshake created one first (the unique
 *   index decided), the winner is re-read and the rules above apply to it.
 */
import { randomUUID } from 'node:crypto';
import { NeuronError } from '../../foundation/errors/index.ts';
import { isUniqueViolation, isoNow, type Db, type Storage } from '../../foundation/storage/index.ts';
import type { AuditLog } from '../audit/index.ts';
import { publishWebhookEvent } from '../webhooks/index.ts';
import { sql } from 'kysely';
import {
  findActive,
  findLatest,
  findLive,
  getRelationship,
  insertActive,
  listRelationships,
  setStatus,
  suspendAllForPatient,
  toRelationship,
  touchHandshake,
  type Relationship,
  type RelationshipFilter,
} from './store.ts';
import { transitionFor, type RelationshipAction } from './transitions.ts';

/** What a completed handshake brings: the relationship's own fields, as the store keeps them. */
export type EstablishRequest = Pick<
  Relationship,
  | 'patientAgentId'
  | 'patientPublicKey'
  | 'patientEndpoint'
  | 'providerNpi'
  | 'consentedActions'
  | 'consentTokenPayload'
  | 'consentTokenSignature'
  | 'tokenDialect'
  | 'consentExpiresAt'
  | 'connectionId'
> & {
  /** ISO-8601 UTC time of the handshake. */
  at: string;
  /**
   * Whether the patient agent has a directory entry, as the caller read it from the directory in
   * this transaction. A relationship is only ever created in the same transaction as the entry,
   * and entries are never deleted, so an agent without one has no relationship of any status: a
   * first-time patient (the common `new` case) needs no relationship lookup at all.
   */
  patientKnown: boolean;
};

export interface EstablishOutcome {
  status: 'new' | 'existing';
  relationship: Relationship;
}

/** Applies the rules above inside `trx`. Throws NeuronError IDENTITY_MISMATCH or BLOCKED. */
export async function establishRelationship(
  trx: Db,
  request: EstablishRequest,
  newId: () => string = randomUUID,
): Promise<EstablishOutcome> {
  const live = request.patientKnown ? await findLiveIndexed(trx, request.patientAgentId, request.providerNpi) : null;
  if (live !== null) return existingOutcome(trx, live, request);

  const { at, patientKnown: _alreadyUsed, ...fields } = request;
  const relationship: Relationship = {
    ...fields,
    id: newId(),
    status: 'active',
    statusReason: null,
    establishedAt: at,
    lastHandshakeAt: at,
    updatedAt: at,
  };
  if (await insertActive(trx, relationship)) return { status: 'new', relationship };

  // Lost a race to a concurrent handshake (possible on PostgreSQL or across processes).
  const winner = await findActiveIndexed(trx, request.patientAgentId, request.providerNpi);
  if (winner === null) throw new Error('insert conflicted but no active relationship was found');
  return existingOutcome(trx, winner, request);
}

/**
 * The live (active or suspended) relationship of a known patient with a provider. The active one
 * comes through the partial unique index (its predicate must be the literal text of the index's
 * WHERE clause for SQLite to use it; a bound parameter would not match). A suspended one has no
 * index of its own on (patient_agent_id, provider_npi), so that lookup walks the provider's
 * relationships; it runs only for a returning patient without an active relationship here.
 */
async function findLiveIndexed(trx: Db, patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
  return (await findActiveIndexed(trx, patientAgentId, providerNpi)) ?? findLive(trx, patientAgentId, providerNpi);
}

async function findActiveIndexed(trx: Db, patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
  const row = await trx
    .selectFrom('relationships')
    .selectAll()
    .where('patient_agent_id', '=', patientAgentId)
    .where('provider_npi', '=', providerNpi)
    .where(sql<boolean>`status = 'active'`)
    .executeTakeFirst();
  return row === undefined ? null : toRelationship(row);
}

async function existingOutcome(trx: Db, relationship: Relationship, request: EstablishRequest): Promise<EstablishOutcome> {
  if (relationship.status === 'suspended') {
    throw new NeuronError('BLOCKED', { message: 'the organization has put this relationship on hold' });
  }
  if (relationship.patientPublicKey !== request.patientPublicKey) throw new NeuronError('IDENTITY_MISMATCH');
  await touchHandshake(trx, relationship.id, request.at);
  return {
    status: 'existing',
    relationship: { ...relationship, lastHandshakeAt: request.at, updatedAt: request.at },
  };
}

/** Who asked for a change, for the audit log. */
export interface RelationshipActor {
  actor: string;
  keyId: string | undefined;
}

export interface RelationshipServiceOptions {
  storage: Storage;
  audit: AuditLog;
  /**
   * Whether a patient agent is blocked, read in the change's transaction. Given by the
   * composition root (the blocks domain answers it), so this domain does not import blocks,
   * which itself asks this service to suspend a blocked patient's relationships.
   */
  isPatientBlocked: (trx: Db, patientAgentId: string) => Promise<boolean>;
  now?: () => number;
}

/** The organization's reads and status changes of relationships (transitions.ts has the rule). */
export class RelationshipService {
  readonly #options: RelationshipServiceOptions;
  readonly #now: () => number;

  constructor(options: RelationshipServiceOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  list(filter: RelationshipFilter): Promise<{ items: Relationship[]; next: string | null }> {
    return listRelationships(this.#options.storage.db, filter);
  }

  /** Throws NOT_FOUND. */
  async get(id: string): Promise<Relationship> {
    const relationship = await getRelationship(this.#options.storage.db, id);
    if (relationship === null) throw new NeuronError('NOT_FOUND', { message: 'no relationship with this id' });
    return relationship;
  }

  /** The active relationship of a patient agent with a provider, or null (consent checks). */
  findActive(patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
    return findActive(this.#options.storage.db, patientAgentId, providerNpi);
  }

  /** The most recently established relationship of any status with a provider, or null (consent checks). */
  findLatest(patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
    return findLatest(this.#options.storage.db, patientAgentId, providerNpi);
  }

  /**
   * Suspends every live relationship of a patient agent inside the caller's transaction (a block);
   * returns their ids.
   */
  suspendAllForPatient(trx: Db, patientAgentId: string, reason: string, at: string): Promise<string[]> {
    return suspendAllForPatient(trx, patientAgentId, reason, at);
  }

  /**
   * Applies one organization-side change in one audited transaction; terminating also publishes
   * the `relationship.terminated` webhook in it. Throws NOT_FOUND, RELATIONSHIP_TERMINATED or
   * CONFLICT. `webhooks`: deliveries queued, so the caller can wake the outbox.
   */
  async changeStatus(
    id: string,
    action: RelationshipAction,
    reason: string,
    by: RelationshipActor,
  ): Promise<{ relationship: Relationship; webhooks: number }> {
    const { storage, audit } = this.#options;
    const now = this.#now();
    const at = isoNow(now);
    return storage.transaction(async (trx) => {
      // The audit chain lock first: concurrent changes to the same row through any instance are serialised.
      await storage.lock(trx, 'audit_chain');
      const current = await getRelationship(trx, id);
      if (current === null) throw new NeuronError('NOT_FOUND', { message: 'no relationship with this id' });
      const transition = transitionFor(current.status, action);
      if (action === 'resume' && (await this.#options.isPatientBlocked(trx, current.patientAgentId))) {
        throw new NeuronError('CONFLICT', { message: 'the patient agent is blocked; remove the block before resuming its relationships' });
      }
      const updated = await this.#store(trx, id, action, transition.to, reason, at);
      const webhooks =
        action !== 'terminate'
          ? 0
          : await publishWebhookEvent(
              trx,
              'relationship.terminated',
              {
                relationship_id: updated.id,
                patient_agent_id: updated.patientAgentId,
                provider_npi: updated.providerNpi,
                reason,
                terminated_at: at,
              },
              at,
            );
      await audit.append(
        trx,
        {
          type: transition.audit,
          actor: by.actor,
          details: {
            relationship_id: id,
            provider_npi: updated.providerNpi,
            from: current.status,
            to: transition.to,
            reason,
            key_id: by.keyId,
          },
        },
        now,
      );
      return { relationship: updated, webhooks };
    });
  }

  async #store(
    trx: Db,
    id: string,
    action: RelationshipAction,
    to: Relationship['status'],
    reason: string,
    at: string,
  ): Promise<Relationship> {
    let updated: Relationship | null;
    try {
      updated = await setStatus(trx, id, to, reason, at);
    } catch (error) {
      if (action === 'resume' && isUniqueViolation(error)) {
        throw new NeuronError('CONFLICT', {
          message: 'the patient has another active relationship with this provider; terminate one of them first',
        });
      }
      throw error;
    }
    if (updated === null) throw new NeuronError('RELATIONSHIP_TERMINATED');
    return updated;
  }
}
