/**
 * The one error the Axon registry client throws (./client.ts says what each kind means to the
 * caller): what was attempted, what kind of failure, and the registry's own status and text with
 * secrets scrubbed. No `cause`, so logging it cannot leak a URL holding the registration id.
 */
import { NeuronError, type ErrorCode } from '../../foundation/errors/index.ts';

export type RegistryErrorKind = 'unreachable' | 'unauthorized' | 'duplicate' | 'rejected' | 'aborted';
export type RegistryOperation =
  | 'register_neuron'
  | 'heartbeat'
  | 'register_provider'
  | 'delete_provider'
  | 'get_entry'
  | 'search'
  | 'create_agent_card'
  | 'update_agent_card'
  | 'delete_agent_card';

// The catalogue has no registry-specific codes yet; these are the closest public meanings should
// one of these errors ever reach an API answer.
const KIND_CODE: Record<RegistryErrorKind, ErrorCode> = {
  unreachable: 'NOT_READY',
  unauthorized: 'NOT_READY',
  duplicate: 'CONFLICT',
  rejected: 'VALIDATION_FAILED',
  aborted: 'SHUTTING_DOWN',
};

const KIND_MESSAGE: Record<RegistryErrorKind, string> = {
  unreachable: 'The Axon registry could not be reached',
  unauthorized: "The Axon registry refused this Neuron's registration credentials",
  duplicate: 'The Axon registry already holds this entry',
  rejected: 'The Axon registry rejected the request',
  aborted: 'The registry request was cancelled',
};

export class RegistryError extends NeuronError {
  readonly kind: RegistryErrorKind;
  readonly operation: RegistryOperation;
  /** The registry's HTTP status, or null when no answer arrived. */
  readonly registryStatus: number | null;
  /** The registry's `error` text (secrets scrubbed), or null. */
  readonly registryError: string | null;
  /** What happened, for logs: "timed out after 10000 ms", "ECONNREFUSED", "HTTP 500". */
  readonly detail: string;

  constructor(
    operation: RegistryOperation,
    kind: RegistryErrorKind,
    details: { registryStatus?: number | null; registryError?: string | null; detail: string },
  ) {
    super(KIND_CODE[kind], { message: KIND_MESSAGE[kind] });
    this.name = 'RegistryError';
    this.kind = kind;
    this.operation = operation;
    this.registryStatus = details.registryStatus ?? null;
    this.registryError = details.registryError ?? null;
    this.detail = details.detail;
  }

  /** One line for logs and status; holds no secrets. */
  describe(): string {
    const text = this.registryError === null ? '' : `: ${this.registryError}`;
    return `${this.operation} ${this.kind} (${this.detail})${text}`;
  }
}

export function isRegistryError(value: unknown): value is RegistryError {
  return value instanceof RegistryError;
}
