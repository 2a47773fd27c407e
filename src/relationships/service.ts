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
import { findActive, findLive, insertActive, touchHandshake, type Relationship } from './store.ts';

export interface EstablishRequest {
  patientAgentId: string;
  patientPublicKey: string;
  patientEndpoint: string;
  providerNpi: string;
  consentedActions: string[];
  consentTokenPayload: string;
  consentTokenSignature: string;
  /** 'A' or 'B' (shared/spec/handshake.md section 3). */
  tokenDialect: string;
  /** ISO-8601 UTC. */
  consentExpiresAt: string;
  connectionId: string | null;
  /** ISO-8601 UTC time of the handshake. */
  at: string;
}

export interface EstablishOutcome {
  status: 'new' | 'existing';
  relationship: Relationship;
}

/** Applies the rules above inside `trx`. Throws NeuronError IDENTITY_MISMATCH or BLOCKED. */
export async function establishRelationship(trx: Db, request: EstablishRequest, newId: () => string = randomUUID): Promise<EstablishOutcome> {
  const live = await findLive(trx, request.patientAgentId, request.providerNpi);
  if (live !== null) return existingOutcome(trx, live, request);

  const relationship: Relationship = {
    id: newId(),
    patientAgentId: request.patientAgentId,
    patientPublicKey: request.patientPublicKey,
    patientEndpoint: request.patientEndpoint,
    providerNpi: request.providerNpi,
    consentedActions: request.consentedActions,
    consentTokenPayload: request.consentTokenPayload,
    consentTokenSignature: request.consentTokenSignature,
    tokenDialect: request.tokenDialect,
    consentExpiresAt: request.consentExpiresAt,
    connectionId: request.connectionId,
    status: 'active',
    statusReason: null,
    establishedAt: request.at,
    lastHandshakeAt: request.at,
    updatedAt: request.at,
  };
  if (await insertActive(trx, relationship)) return { status: 'new', relationship };

  // Lost a race to a concurrent handshake (possible on PostgreSQL or across processes).
  const winner = await findActive(trx, request.patientAgentId, request.providerNpi);
  if (winner === null) throw new Error('insert conflicted but no active relationship was found');
  return existingOutcome(trx, winner, request);
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
