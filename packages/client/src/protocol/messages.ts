/**
 * The handshake messages of shared/spec/handshake.md section 4 as TypeBox schemas, compiled once
 * at module load (with ajv, ./schema-check.ts), and the parsers the two ends use.
 *
 * Client messages (patient -> Neuron) are strict: an unknown top-level field is a wrong schema,
 * so INVALID_MESSAGE. The one exception is inside `patient_profile`, whose unknown fields the spec
 * says to drop: the profile schema tolerates them and the parser keeps only the allow-listed
 * fields. JSON.parse turns a `__proto__` key into an ordinary own property, which the strict
 * schemas reject as unknown and the profile copy never reads, so no prototype is ever touched.
 *
 * Server messages (Neuron -> patient) are validated field by field but tolerate extra fields,
 * so a client keeps working against a Neuron that adds optional fields later.
 */
import Type, { type Static } from 'typebox';
import { BASE64URL_ANY_PATTERN, base64urlPattern } from './base64url.ts';
import { ProtocolError } from './errors.ts';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './keys.ts';
import { DISPLAY_TEXT_PATTERN, PROTOCOL_BOUNDS as B } from './limits.ts';
import { compileCheck } from './schema-check.ts';
import { isIsoDate } from './time.ts';

// ---- field types ----

/** Visible ASCII without spaces: identifiers end up in logs and audit records, so no control or layout characters. */
const VISIBLE_ASCII = '^[\\x21-\\x7E]+$';

export const PublicKeyField = Type.String({ pattern: base64urlPattern(ED25519_PUBLIC_KEY_BYTES) });
export const SignatureField = Type.String({ pattern: base64urlPattern(ED25519_SIGNATURE_BYTES) });
/** 32 bytes as 64 lowercase hex characters. */
export const NonceField = Type.String({ pattern: '^[0-9a-f]{64}$' });
/** The spec asks for 10 digits; whether the NPI is one we serve is the server's question (PROVIDER_NOT_FOUND). */
export const NpiField = Type.String({ pattern: '^[0-9]{10}$' });
export const AgentIdField = Type.String({ minLength: 1, maxLength: B.agentIdMaxChars, pattern: VISIBLE_ASCII });
export const ConnectionIdField = Type.String({ minLength: 1, maxLength: B.connectionIdMaxChars, pattern: VISIBLE_ASCII });
/** http(s) or ws(s) URL; the parser also checks that WHATWG URL parsing accepts it. */
export const EndpointField = Type.String({
  maxLength: B.endpointMaxChars,
  pattern: '^(?:https?|wss?)://[\\x21-\\x7E]+$',
});
export const TokenPayloadField = Type.String({ minLength: 1, maxLength: B.tokenPayloadMaxChars, pattern: BASE64URL_ANY_PATTERN });
/** An action string: visible characters, no control characters. */
export const ActionField = Type.String({ minLength: 1, maxLength: B.actionMaxChars, pattern: '^[^\\u0000-\\u001F\\u007F]+$' });
export const ActionsField = Type.Array(ActionField, { maxItems: B.actionsMaxCount });
export const UuidField = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' });
/** Upper-case code names such as CONSENT_FAILED; a pattern, not an enum, so newer codes pass through to the client. */
const CodeField = Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' });

// ---- patient -> Neuron ----

export const PatientProfileSchema = Type.Object(
  {
    display_name: Type.Optional(Type.String({ minLength: 1, maxLength: B.displayNameMaxChars, pattern: DISPLAY_TEXT_PATTERN })),
    /** YYYY-MM-DD; the parser also checks it is a real calendar date. */
    date_of_birth: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' })),
    /** A BCP 47 language tag shape such as en, en-US, zh-Hant-TW. */
    preferred_language: Type.Optional(
      Type.String({ maxLength: B.preferredLanguageMaxChars, pattern: '^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$' }),
    ),
  },
  { additionalProperties: true },
);
/** The allow-listed front-desk fields; anything else in the wire object is dropped. */
export const PATIENT_PROFILE_FIELDS = ['display_name', 'date_of_birth', 'preferred_language'] as const;
export type PatientProfile = { [K in (typeof PATIENT_PROFILE_FIELDS)[number]]?: string };

export const HandshakeAuthSchema = Type.Object(
  {
    type: Type.Literal('handshake.auth'),
    patient_agent_id: AgentIdField,
    patient_public_key: PublicKeyField,
    patient_endpoint: EndpointField,
    consent_token_payload: TokenPayloadField,
    consent_token_signature: SignatureField,
    connection_id: Type.Optional(ConnectionIdField),
  },
  { additionalProperties: false },
);
export type HandshakeAuth = Static<typeof HandshakeAuthSchema>;

export const HandshakeChallengeResponseSchema = Type.Object(
  {
    type: Type.Literal('handshake.challenge_response'),
    signed_nonce: SignatureField,
    patient_profile: Type.Optional(PatientProfileSchema),
  },
  { additionalProperties: false },
);
/** A parsed challenge response: `patient_profile` holds only the allow-listed fields. */
export interface HandshakeChallengeResponse {
  type: 'handshake.challenge_response';
  signed_nonce: string;
  patient_profile?: PatientProfile;
}

// ---- Neuron -> patient ----

export const HandshakeChallengeSchema = Type.Object({
  type: Type.Literal('handshake.challenge'),
  nonce: NonceField,
  provider_npi: NpiField,
  organization_npi: NpiField,
});
export type HandshakeChallenge = Static<typeof HandshakeChallengeSchema>;

export const SignedPayloadSchema = Type.Object({
  payload: Type.String({ minLength: 1, maxLength: B.attestationPayloadMaxChars, pattern: BASE64URL_ANY_PATTERN }),
  signature: SignatureField,
});
export type SignedPayload = Static<typeof SignedPayloadSchema>;

export const HandshakeCompleteSchema = Type.Object({
  type: Type.Literal('handshake.complete'),
  status: Type.Union([Type.Literal('new'), Type.Literal('existing')]),
  relationship_id: UuidField,
  provider_npi: NpiField,
  provider_endpoint: EndpointField,
  provider_public_key: Type.Optional(PublicKeyField),
  consented_actions: ActionsField,
  // The audit receipt rides along as an additive member (./receipt.ts checks it when verifying).
  attestation: Type.Intersect([SignedPayloadSchema, Type.Object({ receipt: Type.Optional(Type.Unknown()) })]),
  neuron_public_key: PublicKeyField,
});
export type HandshakeComplete = Static<typeof HandshakeCompleteSchema>;

export const HandshakeErrorSchema = Type.Object({
  type: Type.Literal('handshake.error'),
  code: CodeField,
  reason: Type.Optional(CodeField),
  message: Type.String({ maxLength: B.errorMessageMaxChars }),
});
export type HandshakeErrorMessage = Static<typeof HandshakeErrorSchema>;

export type ClientMessageType = 'handshake.auth' | 'handshake.challenge_response';
export type ServerMessage = HandshakeChallenge | HandshakeComplete | HandshakeErrorMessage;

// Compiled once; each check is then a generated function, not a schema walk.
const checkAuth = compileCheck(HandshakeAuthSchema);
const checkChallengeResponse = compileCheck(HandshakeChallengeResponseSchema);
const checkChallenge = compileCheck(HandshakeChallengeSchema);
const checkComplete = compileCheck(HandshakeCompleteSchema);
const checkError = compileCheck(HandshakeErrorSchema);

export interface MessageLimits {
  /** handshake.max_message_bytes; the WebSocket layer enforces it too, this guards direct callers. */
  maxMessageBytes?: number;
}

function invalid(message: string): ProtocolError {
  // Public messages name the problem class only; they never quote the input.
  return new ProtocolError('INVALID_MESSAGE', { message });
}

function parseJsonObject(text: string, limits: MessageLimits | undefined): Record<string, unknown> {
  const max = limits?.maxMessageBytes;
  // UTF-16 length <= UTF-8 length <= 3 x UTF-16 length: count bytes only when it can matter.
  if (max !== undefined && (text.length > max || (text.length * 3 > max && Buffer.byteLength(text, 'utf8') > max))) {
    throw new ProtocolError('MESSAGE_TOO_LARGE');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('message is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('message is not a JSON object');
  return value as Record<string, unknown>;
}

function isUrlWithScheme(text: string): boolean {
  try {
    const url = new URL(text);
    return url.hostname.length > 0 && /^(?:https?|wss?):$/.test(url.protocol);
  } catch {
    return false;
  }
}

/**
 * Parses one client text frame that must be of type `expected` (anything else, including the
 * other client message, is out of order). Throws ProtocolError INVALID_MESSAGE (or
 * MESSAGE_TOO_LARGE over `limits.maxMessageBytes`).
 */
export function parseClientMessage(text: string, expected: 'handshake.auth', limits?: MessageLimits): HandshakeAuth;
export function parseClientMessage(
  text: string,
  expected: 'handshake.challenge_response',
  limits?: MessageLimits,
): HandshakeChallengeResponse;
export function parseClientMessage(
  text: string,
  expected: ClientMessageType,
  limits?: MessageLimits,
): HandshakeAuth | HandshakeChallengeResponse;
export function parseClientMessage(
  text: string,
  expected: ClientMessageType,
  limits?: MessageLimits,
): HandshakeAuth | HandshakeChallengeResponse {
  const value = parseJsonObject(text, limits);
  if (value.type !== expected) throw invalid(`expected a ${expected} message`);
  if (expected === 'handshake.auth') {
    if (!checkAuth(value)) throw invalid('handshake.auth does not match the protocol');
    if (!isUrlWithScheme(value.patient_endpoint)) throw invalid('patient_endpoint is not a valid URL');
    return value;
  }
  if (!checkChallengeResponse(value)) throw invalid('handshake.challenge_response does not match the protocol');
  const wire = value.patient_profile;
  const result: HandshakeChallengeResponse = { type: 'handshake.challenge_response', signed_nonce: value.signed_nonce };
  if (wire !== undefined) {
    if (wire.date_of_birth !== undefined && !isIsoDate(wire.date_of_birth)) {
      throw invalid('patient_profile.date_of_birth is not a calendar date');
    }
    const profile: PatientProfile = {};
    for (const field of PATIENT_PROFILE_FIELDS) {
      const v = wire[field];
      if (v !== undefined) profile[field] = v;
    }
    result.patient_profile = profile;
  }
  return result;
}

/** Parses one Neuron -> patient text frame (client side). Throws ProtocolError INVALID_MESSAGE. */
export function parseServerMessage(text: string, limits?: MessageLimits): ServerMessage {
  const value = parseJsonObject(text, limits);
  switch (value.type) {
    case 'handshake.challenge':
      if (checkChallenge(value)) return value;
      break;
    case 'handshake.complete':
      if (checkComplete(value) && isUrlWithScheme(value.provider_endpoint)) return value;
      break;
    case 'handshake.error':
      if (checkError(value)) return value;
      break;
    default:
      throw invalid('unknown message type');
  }
  throw invalid(`${value.type} does not match the protocol`);
}

/** What an error frame carries: a catalogue code, its public reason and message (the server's NeuronError has them). */
export interface ErrorFrameSource {
  readonly code: string;
  readonly reason?: string | undefined;
  readonly message: string;
}

/** The `handshake.error` frame for an error (sent before the close with its close code). */
export function encodeErrorFrame(error: ErrorFrameSource): string {
  const frame: HandshakeErrorMessage =
    error.reason === undefined
      ? { type: 'handshake.error', code: error.code, message: error.message }
      : { type: 'handshake.error', code: error.code, reason: error.reason, message: error.message };
  return JSON.stringify(frame);
}
