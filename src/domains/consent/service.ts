/**
 * Consent checks for provider CareAgents, answered from the relationship store on every call (no
 * cache: a suspension or termination counts from the next check).
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import { findActive, toRelationship, type Relationship } from '../relationships/store.ts';
import type { Db } from '../../foundation/storage/index.ts';
import { decideConsent, type ConsentGrant } from './decision.ts';

export interface ConsentQuestion {
  /** The calling provider (from its credential, never from the request body). */
  providerNpi: string;
  patientAgentId: string;
  action: string;
  /** When given, it must be the key the roster holds for the calling provider. */
  providerPublicKey?: string;
}

async function latestRelationship(db: Db, patientAgentId: string, providerNpi: string): Promise<Relationship | null> {
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

export async function verifyConsent(db: Db, question: ConsentQuestion): Promise<ConsentGrant> {
  if (question.providerPublicKey !== undefined) {
    const provider = await db
      .selectFrom('providers')
      .select('provider_public_key')
      .where('npi', '=', question.providerNpi)
      .executeTakeFirst();
    if (!provider || provider.provider_public_key !== question.providerPublicKey) {
      throw new NeuronError('CONSENT_DENIED', { message: 'the presented provider key is not the key registered for this provider' });
    }
  }
  const active = await findActive(db, question.patientAgentId, question.providerNpi);
  const latest = active === null ? await latestRelationship(db, question.patientAgentId, question.providerNpi) : null;
  return decideConsent(active, latest, question.action);
}
