/**
 * Relationship records. At most one active relationship per (patient agent id, provider NPI) is
 * guaranteed by a partial unique index; `insertActive` reports a lost race instead of throwing so
 * the handshake can answer `existing`.
 */
import type { Db } from '../../foundation/storage/index.ts';
import type { RelationshipsTable } from '../../foundation/storage/tables.ts';
import { Statement, changedOneRow } from '../../foundation/storage/statements.ts';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';

export type RelationshipStatus = RelationshipsTable['status'];

export interface Relationship {
  id: string;
  patientAgentId: string;
  patientPublicKey: string;
  patientEndpoint: string;
  providerNpi: string;
  consentedActions: string[];
  consentTokenPayload: string;
  consentTokenSignature: string;
  tokenDialect: string;
  consentExpiresAt: string;
  connectionId: string | null;
  status: RelationshipStatus;
  statusReason: string | null;
  establishedAt: string;
  lastHandshakeAt: string;
  updatedAt: string;
}

export function toRelationship(row: RelationshipsTable): Relationship {
  return {
    id: row.id,
    patientAgentId: row.patient_agent_id,
    patientPublicKey: row.patient_public_key,
    patientEndpoint: row.patient_endpoint,
    providerNpi: row.provider_npi,
    consentedActions: JSON.parse(row.consented_actions) as string[],
    consentTokenPayload: row.consent_token_payload,
    consentTokenSignature: row.consent_token_signature,
    tokenDialect: row.token_dialect,
    consentExpiresAt: row.consent_expires_at,
    connectionId: row.connection_id,
    status: row.status,
    statusReason: row.status_reason,
    establishedAt: row.established_at,
    lastHandshakeAt: row.last_handshake_at,
    updatedAt: row.updated_at,
  };
}

function toRow(r: Relationship): RelationshipsTable {
  return {
    id: r.id,
    patient_agent_id: r.patientAgentId,
    patient_public_key: r.patientPublicKey,
    patient_endpoint: r.patientEndpoint,
    provider_npi: r.providerNpi,
    consented_actions: JSON.stringify(r.consentedActions),
    consent_token_payload: r.consentTokenPayload,
    consent_token_signature: r.consentTokenSignature,
    token_dialect: r.tokenDialect,
    consent_expires_at: r.consentExpiresAt,
    connection_id: r.connectionId,
    status: r.status,
    status_reason: r.statusReason,
    established_at: r.establishedAt,
    last_handshake_at: r.lastHandshakeAt,
    updated_at: r.updatedAt,
  };
}

export async function findActive(db: Db, patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
  const row = await db
    .selectFrom('relationships')
    .selectAll()
    .where('patient_agent_id', '=', patientAgentId)
    .where('provider_npi', '=', providerNpi)
    .where('status', '=', 'active')
    .executeTakeFirst();
  return row ? toRelationship(row) : null;
}

/** The live (active or suspended) relationship of a patient with a provider, if any. */
export async function findLive(db: Db, patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
  const row = await db
    .selectFrom('relationships')
    .selectAll()
    .where('patient_agent_id', '=', patientAgentId)
    .where('provider_npi', '=', providerNpi)
    .where('status', 'in', ['active', 'suspended'])
    .orderBy('established_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? toRelationship(row) : null;
}

/** The most recently established relationship of any status between the two, or null. */
export async function findLatest(db: Db, patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
  const row = await db
    .selectFrom('relationships')
    .selectAll()
    .where('patient_agent_id', '=', patientAgentId)
    .where('provider_npi', '=', providerNpi)
    .orderBy('established_at', 'desc')
    .orderBy('updated_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? toRelationship(row) : null;
}

export async function getRelationship(db: Db, id: string): Promise<Relationship | null> {
  const row = await db.selectFrom('relationships').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toRelationship(row) : null;
}

/**
 * Inserts an active relationship. Returns false, writing nothing, when another active one for the
 * same patient and provider already exists (the unique index decided a race).
 */
export async function insertActive(db: Db, relationship: Relationship): Promise<boolean> {
  const r = toRow(relationship);
  const result = await INSERT_ACTIVE.execute(db, [
    r.id,
    r.patient_agent_id,
    r.patient_public_key,
    r.patient_endpoint,
    r.provider_npi,
    r.consented_actions,
    r.consent_token_payload,
    r.consent_token_signature,
    r.token_dialect,
    r.consent_expires_at,
    r.connection_id,
    r.status,
    r.status_reason,
    r.established_at,
    r.last_handshake_at,
    r.updated_at,
  ]);
  return changedOneRow(result);
}

/**
 * Every new handshake inserts one: plain SQL written once (../storage/statements.ts). The conflict
 * target names the partial index; its predicate must be the literal text of the index's WHERE
 * clause (a bound parameter would not match it).
 */
const INSERT_ACTIVE =
  new Statement(`INSERT INTO relationships (id, patient_agent_id, patient_public_key, patient_endpoint, provider_npi, consented_actions,
    consent_token_payload, consent_token_signature, token_dialect, consent_expires_at, connection_id, status, status_reason, established_at,
    last_handshake_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (patient_agent_id, provider_npi) WHERE status = 'active' DO NOTHING`);

export async function touchHandshake(db: Db, id: string, at: string): Promise<void> {
  await db.updateTable('relationships').set({ last_handshake_at: at, updated_at: at }).where('id', '=', id).execute();
}

/**
 * Moves a relationship to a new status. Terminated is final: nothing moves a terminated
 * relationship anywhere. Returns the updated record, or null when the transition is not allowed.
 */
export async function setStatus(
  db: Db,
  id: string,
  status: RelationshipStatus,
  reason: string | null,
  at: string,
): Promise<Relationship | null> {
  const result = await db
    .updateTable('relationships')
    .set({ status, status_reason: reason, updated_at: at })
    .where('id', '=', id)
    .where('status', '!=', 'terminated')
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) return null;
  return getRelationship(db, id);
}

/**
 * Whether a live (active or suspended) relationship is held under this agent id and key: the
 * directory asks before another key may take over the agent's entry. Plain SQL written once
 * (storage/statements.ts), since the directory may ask in a handshake's transaction;
 * relationships_by_patient leads with the agent id.
 */
const LIVE_UNDER_KEY = new Statement(
  "SELECT 1 AS live FROM relationships WHERE patient_agent_id = ? AND patient_public_key = ? AND status IN ('active', 'suspended') LIMIT 1",
);

export async function hasLiveRelationshipUnderKey(db: Db, patientAgentId: string, patientPublicKey: string): Promise<boolean> {
  return (await LIVE_UNDER_KEY.execute<{ live: number }>(db, [patientAgentId, patientPublicKey])).rows.length > 0;
}

/** Every public key this agent id presented in its relationships, of any status (a block stores them). */
export async function publicKeysPresentedBy(db: Db, patientAgentId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('relationships')
    .select('patient_public_key')
    .distinct()
    .where('patient_agent_id', '=', patientAgentId)
    .execute();
  return rows.map((row) => row.patient_public_key);
}

/** Suspends every active relationship of a patient agent (used when the organization blocks it). */
export async function suspendAllForPatient(db: Db, patientAgentId: string, reason: string, at: string): Promise<string[]> {
  const rows = await db
    .selectFrom('relationships')
    .select('id')
    .where('patient_agent_id', '=', patientAgentId)
    .where('status', '=', 'active')
    .execute();
  if (rows.length > 0) {
    await db
      .updateTable('relationships')
      .set({ status: 'suspended', status_reason: reason, updated_at: at })
      .where('patient_agent_id', '=', patientAgentId)
      .where('status', '=', 'active')
      .execute();
  }
  return rows.map((row) => row.id);
}

export interface RelationshipFilter {
  providerNpi?: string;
  patientAgentId?: string;
  status?: RelationshipStatus;
  establishedFrom?: string;
  establishedTo?: string;
  after?: string;
  limit: number;
}

/** A page in (established_at, id) order; `next` is the cursor for the following page or null. */
export async function listRelationships(db: Db, filter: RelationshipFilter): Promise<{ items: Relationship[]; next: string | null }> {
  let query = db.selectFrom('relationships').selectAll();
  if (filter.providerNpi !== undefined) query = query.where('provider_npi', '=', filter.providerNpi);
  if (filter.patientAgentId !== undefined) query = query.where('patient_agent_id', '=', filter.patientAgentId);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.establishedFrom !== undefined) query = query.where('established_at', '>=', filter.establishedFrom);
  if (filter.establishedTo !== undefined) query = query.where('established_at', '<', filter.establishedTo);
  if (filter.after !== undefined) {
    const [at, id] = decodeCursor(filter.after, ['string', 'string']) as [string, string];
    query = query.where((eb) => eb.or([eb('established_at', '>', at), eb.and([eb('established_at', '=', at), eb('id', '>', id)])]));
  }
  const rows = await query
    .orderBy('established_at', 'asc')
    .orderBy('id', 'asc')
    .limit(filter.limit + 1)
    .execute();
  return pageOf(rows, filter.limit, toRelationship, (last) => [last.establishedAt, last.id]);
}
