/**
 * Front-desk edits of the patient directory made through the API. Only the allow-listed
 * demographics can change; the entry itself (agent id, key, endpoint) is the handshake's and is
 * kept when the profile is deleted, so relationships and the audit trail stay intact. Audit
 * entries name the fields that changed, never their values.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import { isoNow, type Storage } from '../../foundation/storage/index.ts';
import type { AuditLog } from '../audit/index.ts';
import { PATIENT_PROFILE_FIELDS } from 'neuron-careagent-client/protocol';
import { getPatient, listPatients, setProfile, type PatientEntry, type PatientFilter, type PatientProfile } from './store.ts';

export type ProfileField = (typeof PATIENT_PROFILE_FIELDS)[number];
/** A merge patch: a string sets the field, null removes it, an absent field stays as it is. */
export type ProfilePatch = { [K in ProfileField]?: string | null };

export interface DirectoryActor {
  actor: string;
  keyId: string | undefined;
}

export interface DirectoryServiceOptions {
  storage: Storage;
  audit: AuditLog;
  now?: () => number;
}

export class DirectoryService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;
  readonly #now: () => number;

  constructor(options: DirectoryServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
    this.#now = options.now ?? Date.now;
  }

  /** A page of directory entries, optionally filtered by a search text. */
  list(filter: PatientFilter): Promise<{ items: PatientEntry[]; next: string | null }> {
    return listPatients(this.#storage.db, filter);
  }

  async get(patientAgentId: string): Promise<PatientEntry> {
    const entry = await getPatient(this.#storage.db, patientAgentId);
    if (entry === null) throw new NeuronError('NOT_FOUND', { message: 'no patient with this agent id in the directory' });
    return entry;
  }

  async updateProfile(patientAgentId: string, patch: ProfilePatch, by: DirectoryActor): Promise<PatientEntry> {
    const now = this.#now();
    const at = isoNow(now);
    return this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      const entry = await getPatient(trx, patientAgentId);
      if (entry === null) throw new NeuronError('NOT_FOUND', { message: 'no patient with this agent id in the directory' });
      const profile: PatientProfile = { ...(entry.profile ?? {}) };
      const changed: ProfileField[] = [];
      for (const field of PATIENT_PROFILE_FIELDS) {
        const value = patch[field];
        if (value === undefined) continue;
        if (value === null) {
          if (profile[field] !== undefined) changed.push(field);
          delete profile[field];
        } else {
          if (profile[field] !== value) changed.push(field);
          profile[field] = value;
        }
      }
      if (changed.length === 0) return entry;
      const next = Object.keys(profile).length === 0 ? null : profile;
      await setProfile(trx, patientAgentId, next, at);
      await this.#audit.append(
        trx,
        {
          type: 'patient.profile_updated',
          actor: by.actor,
          details: { patient_agent_id: patientAgentId, fields: changed, key_id: by.keyId },
        },
        now,
      );
      return { ...entry, profile: next, updatedAt: at };
    });
  }

  /** Deletes the front-desk profile; the directory entry, relationships and audit stay. */
  async deleteProfile(patientAgentId: string, by: DirectoryActor): Promise<void> {
    const now = this.#now();
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      const entry = await getPatient(trx, patientAgentId);
      if (entry === null) throw new NeuronError('NOT_FOUND', { message: 'no patient with this agent id in the directory' });
      if (entry.profile === null) return;
      await setProfile(trx, patientAgentId, null, isoNow(now));
      await this.#audit.append(
        trx,
        {
          type: 'patient.profile_deleted',
          actor: by.actor,
          details: { patient_agent_id: patientAgentId, fields: Object.keys(entry.profile), key_id: by.keyId },
        },
        now,
      );
    });
  }
}
