/**
 * The patient directory: who the organization's patients' agents are and how to reach them, plus
 * optional front-desk demographics. Never clinical data. The profile can be deleted on request
 * while the entry (needed for relationships and audit) stays.
 */
import { sql } from 'kysely';
import type { Db } from '../../foundation/storage/index.ts';
import { Statement } from '../../foundation/storage/statements.ts';
import { containsInsensitive, jsonTextField } from '../../foundation/storage/text.ts';
import type { PatientsTable } from '../../foundation/storage/tables.ts';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';
import { hasLiveRelationshipUnderKey } from '../relationships/index.ts';

/** Front-desk demographics only. Unknown fields are dropped before they reach the store. */
export interface PatientProfile {
  display_name?: string;
  date_of_birth?: string;
  preferred_language?: string;
}

export interface PatientEntry {
  patientAgentId: string;
  patientPublicKey: string;
  patientEndpoint: string;
  profile: PatientProfile | null;
  firstSeenAt: string;
  lastSeenAt: string;
  updatedAt: string;
}

function toEntry(row: PatientsTable): PatientEntry {
  return {
    patientAgentId: row.patient_agent_id,
    patientPublicKey: row.patient_public_key,
    patientEndpoint: row.patient_endpoint,
    profile: row.profile === null ? null : (JSON.parse(row.profile) as PatientProfile),
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Creates or refreshes the entry after a completed handshake. A profile given in the handshake
 * replaces the stored one; no profile leaves the stored one as it is. Anyone can present any agent
 * id with a key of their own; the handshake only ties the id to a key per provider. So a different
 * key may take over the entry (key, endpoint, profile) only once no live relationship is held under
 * the entry's current key (the relationships domain answers that); otherwise a stranger could
 * redirect a patient's address by handshaking with another provider.
 */
export async function upsertFromHandshake(
  db: Db,
  entry: { patientAgentId: string; patientPublicKey: string; patientEndpoint: string; profile: PatientProfile | null },
  at: string,
  /** The entry's key as already read in this transaction (directoryKeyOf); read here when not given. */
  knownKey?: string | null,
): Promise<void> {
  const currentKey = knownKey === undefined ? await directoryKeyOf(db, entry.patientAgentId) : knownKey;
  // Only a different key needs the relationships' answer (a first-time or same-key patient does not).
  const replaceable =
    currentKey !== null &&
    currentKey !== entry.patientPublicKey &&
    !(await hasLiveRelationshipUnderKey(db, entry.patientAgentId, currentKey))
      ? currentKey
      : null;
  const profile = entry.profile === null ? null : JSON.stringify(entry.profile);
  await (profile === null ? UPSERT_KEEP_PROFILE : UPSERT_WITH_PROFILE).execute(db, [
    entry.patientAgentId,
    entry.patientPublicKey,
    entry.patientEndpoint,
    profile,
    at,
    at,
    at,
    replaceable,
  ]);
}

/**
 * Every handshake upserts the entry: plain SQL written once (storage/statements.ts), one text with
 * the new profile and one that keeps the stored profile. The last parameter is the current key the
 * caller found replaceable (null: none): the update applies to the same key, or to exactly the key
 * that was checked, so an entry whose key changed since the check is left alone.
 */
function upsertStatement(profileUpdate: string): Statement {
  return new Statement(`INSERT INTO patients (patient_agent_id, patient_public_key, patient_endpoint, profile, first_seen_at, last_seen_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (patient_agent_id) DO UPDATE SET
    patient_public_key = excluded.patient_public_key,
    patient_endpoint = excluded.patient_endpoint,
    profile = ${profileUpdate},
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at
  WHERE patients.patient_public_key = excluded.patient_public_key OR patients.patient_public_key = ?`);
}
const UPSERT_WITH_PROFILE = upsertStatement('excluded.profile');
const UPSERT_KEEP_PROFILE = upsertStatement('patients.profile');

/**
 * The key of the agent's directory entry, or null when it has none (it never completed a
 * handshake here; entries are never deleted). Plain SQL written once (storage/statements.ts):
 * every handshake asks, before the challenge and again at its commit.
 */
const DIRECTORY_KEY = new Statement('SELECT patient_public_key FROM patients WHERE patient_agent_id = ?');

export async function directoryKeyOf(db: Db, patientAgentId: string): Promise<string | null> {
  return (await DIRECTORY_KEY.execute<{ patient_public_key: string }>(db, [patientAgentId])).rows[0]?.patient_public_key ?? null;
}

/** Whether the patient agent has a directory entry, i.e. has completed a handshake here before. */
export async function isKnownPatientAgent(db: Db, patientAgentId: string): Promise<boolean> {
  return (await directoryKeyOf(db, patientAgentId)) !== null;
}

export async function getPatient(db: Db, patientAgentId: string): Promise<PatientEntry | null> {
  const row = await db.selectFrom('patients').selectAll().where('patient_agent_id', '=', patientAgentId).executeTakeFirst();
  return row ? toEntry(row) : null;
}

/** Replaces the profile (null deletes it). Returns false when there is no such patient. */
export async function setProfile(db: Db, patientAgentId: string, profile: PatientProfile | null, at: string): Promise<boolean> {
  const result = await db
    .updateTable('patients')
    .set({ profile: profile === null ? null : JSON.stringify(profile), updated_at: at })
    .where('patient_agent_id', '=', patientAgentId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export interface PatientFilter {
  /** Case-insensitive substring of the agent id or the profile's display name. */
  search?: string;
  after?: string;
  limit: number;
}

export async function listPatients(db: Db, filter: PatientFilter): Promise<{ items: PatientEntry[]; next: string | null }> {
  let query = db.selectFrom('patients').selectAll();
  if (filter.search !== undefined && filter.search !== '') {
    // LIKE wildcards in the search text are matched literally (on SQLite too, through ESCAPE), and
    // only the display name is searched, never the profile's key names or other fields.
    const search = filter.search;
    query = query.where((eb) =>
      eb.or([
        containsInsensitive(sql.ref('patient_agent_id'), search),
        containsInsensitive(jsonTextField(db, sql.ref('profile'), 'display_name'), search),
      ]),
    );
  }
  if (filter.after !== undefined) {
    const [id] = decodeCursor(filter.after, ['string']) as [string];
    query = query.where('patient_agent_id', '>', id);
  }
  const rows = await query
    .orderBy('patient_agent_id', 'asc')
    .limit(filter.limit + 1)
    .execute();
  return pageOf(rows, filter.limit, toEntry, (last) => [last.patientAgentId]);
}
