/**
 * The one error type the protocol layer throws on purpose. Its codes are the Neuron's catalogue
 * codes (shared/spec/handshake.md section 5) as plain strings, so this package needs nothing of
 * the server: the Neuron turns a ProtocolError into its catalogue error with the same code
 * (src/foundation/errors/ in the server), and a client reads `code` and `reason` as they are.
 */

/** Sub-reasons of CONSENT_FAILED, exactly as the handshake spec names them. */
export const CONSENT_FAILURE_REASONS = [
  'INVALID_SIGNATURE',
  'MALFORMED_TOKEN',
  'PATIENT_MISMATCH',
  'CONSENT_EXPIRED',
  'NOT_YET_VALID',
] as const;
export type ConsentFailureReason = (typeof CONSENT_FAILURE_REASONS)[number];

/** The default public message of each code: the Neuron's catalogue title for it. */
export const PROTOCOL_ERROR_TITLES = {
  INVALID_MESSAGE: 'The message does not match the protocol',
  MESSAGE_TOO_LARGE: 'The message is larger than allowed',
  CONSENT_FAILED: 'The consent token is not valid',
} as const;
export type ProtocolErrorCode = keyof typeof PROTOCOL_ERROR_TITLES;

export interface ProtocolErrorOptions {
  /** A public message; defaults to the code's title. Never the input's values. */
  message?: string;
  /** For CONSENT_FAILED: which of the spec's reasons. */
  reason?: ConsentFailureReason;
  /** The underlying detail, for a log only. */
  cause?: unknown;
}

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  readonly reason: ConsentFailureReason | undefined;

  constructor(code: ProtocolErrorCode, options: ProtocolErrorOptions = {}) {
    super(options.message ?? PROTOCOL_ERROR_TITLES[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProtocolError';
    this.code = code;
    this.reason = options.reason;
  }
}

export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}
