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
import { NeuronError } from '../errors/index.ts';
import type { Db } from '../storage/index.ts';
import { sql } from 'kysely';
import { findLive, insertActive, toRelationship, touchHandshake, type Relationship } from './store.ts';

/** What a completed handshake brings: the relationship's own fields, as the store keeps them. */
export type EstablishRequest = Pick<Relationship,
  | 'patientAgentId' | 'patientPublicKey' | 'patientEndpoint' | 'providerNpi' | 'consentedActions'
  | 'consentTokenPayload' | 'consentTokenSignature' | 'tokenDialect' | 'consentExpiresAt' | 'connectionId'> & {
  /** ISO-8601 UTC time of the handshake. */
  at: string;
  /**
   * Whether the patient agent has a directory entry, when the caller already read it in this
   * transaction (false lets a first-time patient skip every relationship lookup); read here when
   * omitted.
   */
  patientKnown?: boolean;
};

export interface EstablishOutcome {
  status: 'new' | 'existing';
  relationship: Relationship;
}

/** Applies the rules above inside `trx`. Throws NeuronError IDENTITY_MISMATCH or BLOCKED. */
export async function establishRelationship(trx: Db, request: EstablishRequest, newId: () => string = randomUUID): Promise<EstablishOutcome> {
  const known = request.patientKnown ?? await hasDirectoryEntry(trx, request.patientAgentId);
  const live = known ? await findLiveIndexed(trx, request.patientAgentId, request.providerNpi) : null;
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
 * A relationship is only ever created in the same transaction as the patient's directory entry,
 * and entries are never deleted, so an agent without one has no relationship of any status: a
 * first-time patient (the common `new` case) needs no relationship lookup at all.
 */
async function hasDirectoryEntry(trx: Db, patientAgentId: string): Promise<boolean> {
  const row = await trx.selectFrom('patients').select('patient_agent_id').where('patient_agent_id', '=', patientAgentId).executeTakeFirst();
  return row !== undefined;
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
  const row = await trx.selectFrom('relationships').selectAll()
    .where('patient_agent_id', '=', patientAgentId).where('provider_npi', '=', providerNpi).where(sql<boolean>`status = 'active'`)
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
