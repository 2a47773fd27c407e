/**
 * Consent checks for provider CareAgents, answered from the relationships on every call (no
 * cache: a suspension or termination counts from the next check). The relationships and the
 * roster are asked through their services; this domain keeps no table of its own.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import type { ProviderService } from '../providers/index.ts';
import type { RelationshipService } from '../relationships/index.ts';
import { decideConsent, type ConsentGrant } from './decision.ts';

export interface ConsentQuestion {
  /** The calling provider (from its credential, never from the request body). */
  providerNpi: string;
  patientAgentId: string;
  action: string;
  /** When given, it must be the key the roster holds for the calling provider. */
  providerPublicKey?: string;
}

export interface ConsentServiceOptions {
  relationships: Pick<RelationshipService, 'findActive' | 'findLatest'>;
  providers: Pick<ProviderService, 'registeredPublicKey'>;
}

export class ConsentService {
  readonly #relationships: ConsentServiceOptions['relationships'];
  readonly #providers: ConsentServiceOptions['providers'];

  constructor(options: ConsentServiceOptions) {
    this.#relationships = options.relationships;
    this.#providers = options.providers;
  }

  /** Throws CONSENT_DENIED or RELATIONSHIP_TERMINATED (./decision.ts). */
  async verify(question: ConsentQuestion): Promise<ConsentGrant> {
    if (question.providerPublicKey !== undefined) {
      const registered = await this.#providers.registeredPublicKey(question.providerNpi);
      if (registered !== question.providerPublicKey) {
        throw new NeuronError('CONSENT_DENIED', { message: 'the presented provider key is not the key registered for this provider' });
      }
    }
    const active = await this.#relationships.findActive(question.patientAgentId, question.providerNpi);
    const latest = active === null ? await this.#relationships.findLatest(question.patientAgentId, question.providerNpi) : null;
    return decideConsent(active, latest, question.action);
  }
}
