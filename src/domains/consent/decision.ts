/**
 * The consent decision, pure: given the relationships between one patient agent and one provider,
 * may the provider perform `action`?
 *
 *   an active relationship consents to the action     -> allowed (that relationship, its scope)
 *   an active relationship does not list the action   -> CONSENT_DENIED
 *   no active one, and the latest one was terminated  -> RELATIONSHIP_TERMINATED
 *   no active one otherwise (suspended, or none)      -> CONSENT_DENIED
 *
 * Actions are compared exactly as the patient consented to them (the Neuron does not interpret
 * them, shared/spec/handshake.md section 3).
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Relationship } from '../relationships/index.ts';

export interface ConsentGrant {
  allowed: true;
  relationshipId: string;
  /** The consented actions of the relationship, verbatim. */
  scope: string[];
}

/** `active` is the active relationship, if any; `latest` the most recently established one of any status. */
export function decideConsent(active: Relationship | null, latest: Relationship | null, action: string): ConsentGrant {
  if (active !== null) {
    if (active.consentedActions.includes(action)) return { allowed: true, relationshipId: active.id, scope: [...active.consentedActions] };
    throw new NeuronError('CONSENT_DENIED', { message: 'the patient has not consented to this action' });
  }
  if (latest !== null && latest.status === 'terminated') throw new NeuronError('RELATIONSHIP_TERMINATED');
  throw new NeuronError('CONSENT_DENIED', { message: 'no active relationship with this patient agent' });
}
