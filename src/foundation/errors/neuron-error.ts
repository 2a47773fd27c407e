import { ERROR_CATALOGUE, type ErrorCode } from './catalogue.ts';

export interface NeuronErrorOptions {
  /** A public message; defaults to the catalogue title. Never put secrets or identifiers here. */
  message?: string;
  /** A public sub-reason (for CONSENT_FAILED: which of the spec's reasons). */
  reason?: string;
  /** Public, field-level detail (for VALIDATION_FAILED: which field and why). */
  errors?: ReadonlyArray<{ path: string; message: string }>;
  /** Extra response headers (Retry-After and the like). */
  headers?: Readonly<Record<string, string>>;
  /** The underlying cause, for the log only. */
  cause?: unknown;
}

/**
 * The one error type our code throws on purpose. Anything else that escapes is an unexpected
 * failure and is answered as SERVER_ERROR with its detail kept in the log.
 */
export class NeuronError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly closeCode: number | null;
  readonly reason: string | undefined;
  readonly errors: ReadonlyArray<{ path: string; message: string }> | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, options: NeuronErrorOptions = {}) {
    const definition = ERROR_CATALOGUE[code];
    super(options.message ?? definition.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NeuronError';
    this.code = code;
    this.status = definition.status;
    this.closeCode = definition.closeCode;
    this.reason = options.reason;
    this.errors = options.errors;
    this.headers = options.headers;
  }
}

export function isNeuronError(value: unknown): value is NeuronError {
  return value instanceof NeuronError;
}
