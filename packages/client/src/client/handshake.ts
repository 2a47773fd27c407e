/**
 * The patient side of the consent handshake (shared/spec/handshake.md): one WebSocket, four
 * messages, and a verified attestation at the end. Kept small so one process can drive
 * thousands of handshakes.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket, { type ClientOptions, type RawData } from 'ws';
import {
  AttestationError,
  ReceiptError,
  parseServerMessage,
  verifyAttestationWithReceipt,
  signChallenge,
  verifyAttestation,
  type Attestation,
  type HandshakeAuth,
  type HandshakeChallenge,
  type HandshakeComplete,
  type HandshakeErrorMessage,
  type PatientProfile,
  type Receipt,
  type SignedPayload,
  type SignedTreeHead,
} from '../protocol/index.ts';
import type { PatientKeys } from './keys.ts';

/**
 * Overall deadline: a Neuron with default limits may queue us up to 30 s, then allows 10 s + 30 s
 * for the two steps; 75 s outlasts that worst case, so the Neuron's own coded answer (503 or an
 * error frame) always arrives before the client gives up.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 75_000;
/** After a handshake.error frame the Neuron closes at once; wait this long for its close code. */
const ERROR_CLOSE_GRACE_MS = 2_000;
/** The Neuron's messages are a few KiB at most (the largest, handshake.complete, stays under 32 KiB). */
const MAX_SERVER_MESSAGE_BYTES = 64 * 1024;
/** Enough of a refusal body to read a problem document's code. */
const MAX_REFUSAL_BODY_BYTES = 4 * 1024;

/**
 * The Neuron's codes a handshake can end with (its error catalogue, docs/errors.md): in an error
 * frame, or in the problem document of a refused upgrade. A newer Neuron may send others; `code`
 * passes them through as strings.
 */
export type NeuronHandshakeCode =
  | 'AUTH_TIMEOUT'
  | 'INVALID_MESSAGE'
  | 'CONSENT_FAILED'
  | 'CHALLENGE_FAILED'
  | 'IDENTITY_MISMATCH'
  | 'BLOCKED'
  | 'PROVIDER_NOT_FOUND'
  | 'MESSAGE_TOO_LARGE'
  | 'HANDSHAKE_QUEUE_FULL'
  | 'HANDSHAKE_QUEUE_TIMEOUT'
  | 'HANDSHAKE_ADDRESS_LIMIT'
  | 'SHUTTING_DOWN'
  | 'SERVER_ERROR'
  | 'ROUTE_NOT_FOUND';

/** Failures seen only by the client (the others are the Neuron's catalogue codes). */
export type ClientFailureCode =
  | 'UPGRADE_REFUSED' // HTTP answer instead of a WebSocket, without a problem code
  | 'CONNECTION_FAILED' // could not connect at all
  | 'CONNECTION_CLOSED' // closed without an error frame and with no more specific code
  | 'CLIENT_TIMEOUT' // timeoutMs elapsed
  | 'UNEXPECTED_MESSAGE' // the Neuron sent something out of protocol
  | 'ATTESTATION_INVALID' // the attestation or its audit receipt did not verify or does not match the result
  | 'NEURON_KEY_MISMATCH'; // the Neuron's key differs from the pinned one
export type HandshakeErrorCode = NeuronHandshakeCode | ClientFailureCode;

export class HandshakeError extends Error {
  /** The Neuron's code from its handshake.error frame or refusal, or a ClientFailureCode. */
  readonly code: HandshakeErrorCode | (string & {});
  /** CONSENT_FAILED sub-reason, or the AttestationError reason for ATTESTATION_INVALID. */
  readonly reason: string | undefined;
  /** The WebSocket close code, when the socket was open and closed. */
  readonly closeCode: number | null;
  /** HTTP status of a refused upgrade (503 when the Neuron's queue is full or timed out). */
  readonly status: number | undefined;
  /** Retry-After of a refused upgrade, in seconds. */
  readonly retryAfter: number | undefined;

  constructor(
    code: HandshakeErrorCode | (string & {}),
    message: string,
    details: { reason?: string; closeCode?: number | null; status?: number; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HandshakeError';
    this.code = code;
    this.reason = details.reason;
    this.closeCode = details.closeCode ?? null;
    this.status = details.status;
    this.retryAfter = details.retryAfter;
  }
}

export interface EstablishOptions {
  patientAgentId: string;
  keys: PatientKeys;
  /** Where the provider CareAgent can reach this patient agent (http(s) or ws(s) URL). */
  endpoint: string;
  consentToken: { payload: string; signature: string };
  /** The registry grant id, for audit correlation. */
  connectionId?: string;
  /** Optional front-desk demographics (never clinical data). */
  profile?: PatientProfile;
  timeoutMs?: number;
  /** Pin the Neuron's key (43-char base64url): anything else fails with NEURON_KEY_MISMATCH. */
  expectedNeuronPublicKey?: string;
  /**
   * Fail with ATTESTATION_INVALID (reason MISSING) when the Neuron sends no audit receipt.
   * Default false: a Neuron from before receipts answers without one (result.receipt is null).
   * A receipt that is present is always verified.
   */
  requireReceipt?: boolean;
  /** Extra ws options (TLS trust, agent, headers). Compression is always off. */
  wsOptions?: Omit<ClientOptions, 'perMessageDeflate' | 'maxPayload'>;
}

export interface RelationshipResult {
  status: 'new' | 'existing';
  relationshipId: string;
  providerNpi: string;
  organizationNpi: string;
  providerEndpoint: string;
  providerPublicKey: string | null;
  consentedActions: string[];
  neuronPublicKey: string;
  /** The signed attestation as received, to keep and show to the provider CareAgent later. */
  attestation: SignedPayload;
  /** The verified attestation fields. */
  attested: Attestation;
  /**
   * The verified audit receipt (docs/protocol.md "Audit receipts"): keep it with the attestation;
   * verifyReceiptConsistency checks it later against a newer tree head. Null from a Neuron that
   * sends none.
   */
  receipt: Receipt | null;
  /** The signed tree head that covers the relationship's audit entry (the receipt's). */
  treeHead: SignedTreeHead | null;
}

/** Close codes that arrive without an error frame (spec section 5 and RFC 6455). */
function codeForClose(closeCode: number): HandshakeErrorCode {
  switch (closeCode) {
    case 1001:
      return 'SHUTTING_DOWN';
    case 1009:
      return 'MESSAGE_TOO_LARGE';
    case 1011:
      return 'SERVER_ERROR';
    default:
      return 'CONNECTION_CLOSED';
  }
}

function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** Reads a refused upgrade's answer (a problem document, at most MAX_REFUSAL_BODY_BYTES) and fails with its code. */
function onUpgradeRefused(response: IncomingMessage, fail: (error: HandshakeError) => void): void {
  const status = response.statusCode ?? 0;
  const retryAfter = parseRetryAfter(response.headers['retry-after']);
  const chunks: Buffer[] = [];
  let size = 0;
  const done = (): void => {
    let code: string = 'UPGRADE_REFUSED';
    let message = `the Neuron refused the WebSocket upgrade (HTTP ${status})`;
    try {
      const problem = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown; detail?: unknown };
      if (typeof problem.code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(problem.code)) code = problem.code;
      if (typeof problem.detail === 'string' && problem.detail.length <= 256) message = problem.detail;
    } catch {
      // not a problem document: keep the generic code
    }
    fail(new HandshakeError(code, message, { status, ...(retryAfter === undefined ? {} : { retryAfter }) }));
  };
  response.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_REFUSAL_BODY_BYTES) chunks.push(chunk);
    else response.destroy();
  });
  response.on('end', done);
  response.on('close', done); // fail() is idempotent
  response.on('error', done);
}

/** The first message: who the patient agent is, and its consent token. */
function authMessage(options: EstablishOptions): HandshakeAuth {
  const auth: HandshakeAuth = {
    type: 'handshake.auth',
    patient_agent_id: options.patientAgentId,
    patient_public_key: options.keys.publicKeyB64,
    patient_endpoint: options.endpoint,
    consent_token_payload: options.consentToken.payload,
    consent_token_signature: options.consentToken.signature,
  };
  if (options.connectionId !== undefined) auth.connection_id = options.connectionId;
  return auth;
}

/** The answer to the challenge: its nonce signed with the patient's key, and the profile if any. */
function challengeResponse(challenge: HandshakeChallenge, options: EstablishOptions): Record<string, unknown> {
  const response: Record<string, unknown> = {
    type: 'handshake.challenge_response',
    signed_nonce: signChallenge(challenge.nonce, options.keys.privateKey),
  };
  if (options.profile !== undefined) response.patient_profile = options.profile;
  return response;
}

/**
 * Checks handshake.complete against the challenge, the pinned key and its attestation (and audit
 * receipt); the verified result, or the HandshakeError to fail with.
 */
function verifiedResult(
  message: HandshakeComplete,
  challenged: HandshakeChallenge,
  options: EstablishOptions,
): RelationshipResult | HandshakeError {
  if (message.provider_npi !== challenged.provider_npi) {
    return new HandshakeError('UNEXPECTED_MESSAGE', 'the completion names another provider than the challenge');
  }
  const pinned = options.expectedNeuronPublicKey;
  if (pinned !== undefined && pinned !== message.neuron_public_key) {
    return new HandshakeError('NEURON_KEY_MISMATCH', 'the Neuron presented a key other than the pinned one');
  }
  let attested: Attestation;
  let receipt: Receipt | null = null;
  let treeHead: SignedTreeHead | null = null;
  const withReceipt = message.attestation.receipt !== undefined || options.requireReceipt === true;
  try {
    const verifyWith = withReceipt ? verifyAttestationWithReceipt : verifyAttestation;
    const verified = verifyWith(message.attestation as SignedPayload & { receipt?: Receipt }, message.neuron_public_key, {
      relationship_id: message.relationship_id,
      patient_agent_id: options.patientAgentId,
      patient_public_key: options.keys.publicKeyB64,
      provider_npi: message.provider_npi,
      provider_public_key: message.provider_public_key ?? null,
      consented_actions: message.consented_actions,
      organization_npi: challenged.organization_npi,
    });
    if ('attested' in verified) ({ attested, receipt, treeHead } = verified);
    else attested = verified;
  } catch (error) {
    const reason = error instanceof AttestationError || error instanceof ReceiptError ? error.reason : undefined;
    return new HandshakeError('ATTESTATION_INVALID', 'the relationship attestation does not verify', {
      ...(reason === undefined ? {} : { reason }),
      cause: error,
    });
  }
  return {
    status: message.status,
    relationshipId: message.relationship_id,
    providerNpi: message.provider_npi,
    organizationNpi: challenged.organization_npi,
    providerEndpoint: message.provider_endpoint,
    providerPublicKey: message.provider_public_key ?? null,
    consentedActions: message.consented_actions,
    neuronPublicKey: message.neuron_public_key,
    attestation: { payload: message.attestation.payload, signature: message.attestation.signature },
    attested,
    receipt,
    treeHead,
  };
}

/**
 * Runs the consent handshake against a Neuron's `ws(s)://host:port/ws/handshake` URL. Resolves
 * with the verified result or rejects with a HandshakeError.
 */
export function establishRelationship(url: string, options: EstablishOptions): Promise<RelationshipResult> {
  return new Promise<RelationshipResult>((resolve, reject) => {
    const ws = new WebSocket(url, {
      ...options.wsOptions,
      perMessageDeflate: false,
      maxPayload: MAX_SERVER_MESSAGE_BYTES,
    });
    let settled = false;
    let challenge: HandshakeChallenge | null = null;
    let errorFrame: HandshakeErrorMessage | null = null;
    let graceTimer: NodeJS.Timeout | undefined;
    let opened = false;

    const timer = setTimeout(() => {
      fail(new HandshakeError('CLIENT_TIMEOUT', 'the handshake did not finish in time'));
    }, options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);

    function finish(): void {
      settled = true;
      clearTimeout(timer);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
    }
    function fail(error: HandshakeError): void {
      if (settled) return;
      finish();
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
      reject(error);
    }
    function protocolViolation(message: string, cause?: unknown): void {
      fail(new HandshakeError('UNEXPECTED_MESSAGE', message, { cause }));
    }
    function failFromErrorFrame(frame: HandshakeErrorMessage, closeCode: number | null): void {
      fail(new HandshakeError(frame.code, frame.message, { ...(frame.reason === undefined ? {} : { reason: frame.reason }), closeCode }));
    }

    ws.on('unexpected-response', (_request, response: IncomingMessage) => onUpgradeRefused(response, fail));

    ws.on('open', () => {
      opened = true;
      ws.send(JSON.stringify(authMessage(options)));
    });

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (settled) return;
      if (isBinary) return protocolViolation('the Neuron sent a binary frame');
      let message: ReturnType<typeof parseServerMessage>;
      try {
        message = parseServerMessage(data.toString());
      } catch (error) {
        return protocolViolation('the Neuron sent a message outside the protocol', error);
      }
      if (message.type === 'handshake.error') {
        // The close with its code follows; wait briefly for it.
        errorFrame = message;
        const frame = message;
        graceTimer = setTimeout(() => failFromErrorFrame(frame, null), ERROR_CLOSE_GRACE_MS);
        return;
      }
      if (message.type === 'handshake.challenge') {
        if (challenge !== null) return protocolViolation('the Neuron sent a second challenge');
        challenge = message;
        ws.send(JSON.stringify(challengeResponse(message, options)));
        return;
      }
      if (challenge === null) return protocolViolation('the Neuron completed before challenging');
      const result = verifiedResult(message, challenge, options);
      if (result instanceof HandshakeError) return fail(result);
      finish();
      // The Neuron closes with 1000 after this message; closing from our side too is harmless.
      ws.close(1000);
      resolve(result);
    });

    ws.on('close', (closeCode: number) => {
      if (settled) return;
      if (errorFrame !== null) return failFromErrorFrame(errorFrame, closeCode);
      fail(new HandshakeError(codeForClose(closeCode), 'the Neuron closed the connection before completing', { closeCode }));
    });

    ws.on('error', (error: Error) => {
      if (settled) return;
      // Before the upgrade this is a connection failure; afterwards the close event follows.
      if (!opened) fail(new HandshakeError('CONNECTION_FAILED', 'could not connect to the Neuron', { cause: error }));
    });
  });
}
