/**
 * The organization-side status changes of a relationship, as a pure rule:
 *
 *   active --suspend--> suspended --resume--> active
 *   active | suspended --terminate--> terminated (final: any further change is 410)
 *
 * Suspending puts a relationship on hold (the patient's handshakes are refused until it is
 * resumed); terminating ends it for good (a later handshake creates a new relationship).
 * RelationshipService (service.ts) applies it inside an audited transaction.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import type { RelationshipStatus } from './store.ts';

export type RelationshipAction = 'suspend' | 'resume' | 'terminate';

export const RELATIONSHIP_ACTIONS: readonly RelationshipAction[] = ['suspend', 'resume', 'terminate'];

const TRANSITIONS: Record<RelationshipAction, { from: RelationshipStatus[]; to: RelationshipStatus; audit: string }> = {
  suspend: { from: ['active'], to: 'suspended', audit: 'relationship.suspended' },
  resume: { from: ['suspended'], to: 'active', audit: 'relationship.resumed' },
  terminate: { from: ['active', 'suspended'], to: 'terminated', audit: 'relationship.terminated' },
};

export interface Transition {
  to: RelationshipStatus;
  /** The audit event type the change is recorded as. */
  audit: string;
}

/** Where `action` takes a relationship that is `current`; throws RELATIONSHIP_TERMINATED or CONFLICT. */
export function transitionFor(current: RelationshipStatus, action: RelationshipAction): Transition {
  const transition = TRANSITIONS[action];
  if (current === 'terminated')
    throw new NeuronError('RELATIONSHIP_TERMINATED', {
      message: 'the relationship was terminated; terminated relationships cannot change',
    });
  if (!transition.from.includes(current)) {
    throw new NeuronError('CONFLICT', {
      message: `the relationship is ${current}; ${action} applies to ${transition.from.join(' or ')} relationships`,
    });
  }
  return { to: transition.to, audit: transition.audit };
}
