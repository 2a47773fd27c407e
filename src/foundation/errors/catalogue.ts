/**
 * The one error catalogue. Every error the Neuron can hand to a client, over REST or over the
 * handshake WebSocket, has a stable code here with its HTTP status, its WebSocket close code and a
 * short public message. Public messages never carry secrets, identifiers or detail beyond what the
 * code needs; the cause goes to the log only.
 *
 * `docs/errors.md` documents every code; a test keeps the two in step.
 */

export interface ErrorDefinition {
  /** HTTP status for REST answers (and for refused WebSocket upgrades). */
  readonly status: number;
  /** WebSocket close code used after a `handshake.error` frame; null when never sent on the socket. */
  readonly closeCode: number | null;
  /** Short, stable, public description. */
  readonly title: string;
}

// WebSocket close codes 4000-4999 are reserved for applications (RFC 6455 section 7.4.2); the
// handshake spec assigns the ones below. 1011 is the standard "internal error" code.
export const ERROR_CATALOGUE = {
  // ---- handshake (shared/spec/handshake.md section 5) ----
  AUTH_TIMEOUT: { status: 408, closeCode: 4001, title: 'No handshake message arrived in time' },
  INVALID_MESSAGE: { status: 400, closeCode: 4002, title: 'The message does not match the protocol' },
  CONSENT_FAILED: { status: 403, closeCode: 4003, title: 'The consent token is not valid' },
  CHALLENGE_FAILED: { status: 403, closeCode: 4003, title: 'The challenge signature does not verify' },
  IDENTITY_MISMATCH: { status: 403, closeCode: 4003, title: 'This patient agent is known under a different key' },
  BLOCKED: { status: 403, closeCode: 4003, title: 'The organization has blocked this patient agent' },
  PROVIDER_NOT_FOUND: { status: 404, closeCode: 4004, title: 'The provider is not served here or not active' },
  MESSAGE_TOO_LARGE: { status: 413, closeCode: 1009, title: 'The message is larger than allowed' },
  HANDSHAKE_QUEUE_FULL: { status: 503, closeCode: null, title: 'Too many handshakes are waiting; retry later' },
  HANDSHAKE_QUEUE_TIMEOUT: { status: 503, closeCode: null, title: 'The handshake waited too long for a slot; retry later' },
  HANDSHAKE_ADDRESS_LIMIT: {
    status: 503,
    closeCode: null,
    title: 'Too many handshakes from this address are waiting or in progress; retry later',
  },
  SHUTTING_DOWN: { status: 503, closeCode: 1001, title: 'The Neuron is shutting down' },
  SERVER_ERROR: { status: 500, closeCode: 1011, title: 'An unexpected error occurred' },

  // ---- REST: request shape ----
  VALIDATION_FAILED: { status: 400, closeCode: null, title: 'The request is not valid' },
  MALFORMED_JSON: { status: 400, closeCode: null, title: 'The request body is not valid JSON' },
  INVALID_CURSOR: { status: 400, closeCode: null, title: 'The pagination cursor is not valid' },
  BODY_TOO_LARGE: { status: 413, closeCode: null, title: 'The request body is larger than allowed' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, closeCode: null, title: 'The request content type is not supported' },
  ROUTE_NOT_FOUND: { status: 404, closeCode: null, title: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, closeCode: null, title: 'The method is not allowed on this route' },
  REQUEST_TIMEOUT: { status: 408, closeCode: null, title: 'The request took too long to arrive' },
  OUTBOUND_TARGET_REFUSED: { status: 400, closeCode: null, title: 'The outbound policy refuses this URL' },

  // ---- REST: authentication and limits ----
  UNAUTHENTICATED: { status: 401, closeCode: null, title: 'A valid credential is required' },
  FORBIDDEN: { status: 403, closeCode: null, title: 'The credential does not allow this' },
  RATE_LIMITED: { status: 429, closeCode: null, title: 'Too many requests; retry later' },

  // ---- REST: the operators' console (src/domains/operators/) ----
  INVALID_CREDENTIALS: { status: 401, closeCode: null, title: 'The operator name or password is not correct' },
  SESSION_EXPIRED: { status: 401, closeCode: null, title: 'The console session has ended; sign in again' },
  CSRF_REJECTED: { status: 403, closeCode: null, title: "The request lacks the session's CSRF token" },
  OPERATOR_LOCKED: { status: 429, closeCode: null, title: 'Too many failed sign-ins for this operator; retry later' },

  // ---- REST: resources ----
  NOT_FOUND: { status: 404, closeCode: null, title: 'The resource does not exist' },
  CONFLICT: { status: 409, closeCode: null, title: 'The resource already exists or is in a conflicting state' },
  RELATIONSHIP_TERMINATED: { status: 410, closeCode: null, title: 'The relationship was terminated' },
  CONSENT_DENIED: { status: 403, closeCode: null, title: 'No active relationship consents to this action' },
  NOT_READY: { status: 503, closeCode: null, title: 'The Neuron is not ready' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Sub-reasons of CONSENT_FAILED, exactly as the handshake spec names them. */
export const CONSENT_FAILURE_REASONS = [
  'INVALID_SIGNATURE',
  'MALFORMED_TOKEN',
  'PATIENT_MISMATCH',
  'CONSENT_EXPIRED',
  'NOT_YET_VALID',
] as const;
