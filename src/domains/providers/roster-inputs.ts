/**
 * What callers hand the provider roster and what it answers (the service's inputs, results and
 * its refusals), apart from the service so that its file stays about the rules.
 */
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Provider } from './store.ts';
import type { FieldProblem, ProviderCredential, ProviderStatus } from './validation.ts';

export interface CreateProviderInput {
  npi: string;
  name: string;
  /** Defaults to ["physician"], like config seeds. */
  provider_types?: string[];
  specialty?: string | null;
  provider_endpoint?: string | null;
  provider_public_key?: string | null;
  notification_url?: string | null;
  credentials?: ProviderCredential[];
  /** Defaults to pending; `active` needs a provider_endpoint. */
  status?: 'pending' | 'active';
}

export interface UpdateProviderInput {
  name?: string;
  provider_types?: string[];
  /** null clears. */
  specialty?: string | null;
  provider_endpoint?: string | null;
  provider_public_key?: string | null;
  notification_url?: string | null;
  credentials?: ProviderCredential[];
}

/** What a provider CareAgent sends to POST /v1/providers/register (the network's provider client). */
export interface RegistrationInput {
  provider_npi: string;
  provider_name: string;
  provider_types: string[];
  specialty?: string;
  credentials?: ProviderCredential[];
  provider_endpoint?: string;
  provider_public_key?: string;
  notification_url?: string;
}

export interface Approval {
  provider: Provider;
  /** `nprv_…`; shown once, never stored. */
  credential: string;
  credentialId: string;
  /** Whether an existing credential was replaced. */
  rotated: boolean;
  /**
   * A registration capability minted now for a provider that had none (added by an operator or a
   * config seed), shown once like the credential; null when the provider already had one.
   */
  registrationId: string | null;
}

/**
 * Who changes the roster, for the audit log: `actor` (`api-key:<label>`, `cli`, …) and, for an API
 * key, its id, since a label is not unique and can be reused after a key is revoked.
 */
export interface RosterActor {
  actor: string;
  keyId?: string | null;
}

/** The audit details every roster change carries about who made it. */
export function byWhom(by: RosterActor): { key_id: string | null } {
  return { key_id: by.keyId ?? null };
}

/** What heartbeat and disconnect answer: the CareAgent's liveness, and its roster status apart. */
export interface AgentLiveness {
  status: 'connected' | 'disconnected';
  lastSeen: string;
  rosterStatus: ProviderStatus;
}

export type RosterChangeType = 'created' | 'updated' | 'approved' | 'suspended' | 'removed' | 'registered' | 'seeded';

export function invalid(problems: FieldProblem[]): NeuronError {
  return new NeuronError('VALIDATION_FAILED', {
    message: `invalid provider: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
    errors: problems,
  });
}

/** A notification URL the outbound policy refuses: its own code, so callers can tell it from a typo. */
export function refused(problems: FieldProblem[]): NeuronError {
  return new NeuronError('OUTBOUND_TARGET_REFUSED', {
    message: `refused by the outbound policy: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
    errors: problems,
  });
}

export function notFound(npi: string): NeuronError {
  return new NeuronError('NOT_FOUND', { message: `no provider with NPI ${npi}` });
}

export const ENDPOINT_NEEDED = 'an active provider needs a provider_endpoint: it is the address patients receive';
