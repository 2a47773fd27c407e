/**
 * The patient's consent token (shared/spec/handshake.md section 3): `payload` is base64url of a
 * claims JSON object, `signature` the patient's Ed25519 signature over exactly those JSON bytes.
 *
 * Verification order, each step only after the previous one passed:
 *   1. the signature, over the decoded payload bytes as received (never re-serialised);
 *   2. the claims: UTF-8 JSON object, no key repeated in any object, in exactly one dialect with
 *      every required claim;
 *   3. the patient: `patient_agent_id` equals the one from handshake.auth;
 *   4. time: not issued in the future and not expired, each beyond the allowed clock skew.
 * Whether `provider_npi` is a provider this Neuron serves is the server's check (PROVIDER_NOT_FOUND).
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { decodeBase64url, encodeBase64url } from './base64url.ts';
import { ProtocolError, type ConsentFailureReason } from './errors.ts';
import { findDuplicateKey } from './json-keys.ts';
import { ED25519_SIGNATURE_BYTES, isCanonicalSignatureBytes } from './keys.ts';
import { PROTOCOL_BOUNDS as B } from './limits.ts';
import { parseIsoUtc } from './time.ts';

export type ConsentDialect = 'A' | 'B';

export interface ConsentClaims {
  /** A: consented_actions / iat / exp (Unix seconds); B: scope / issued_at / expires_at (ISO-8601). */
  dialect: ConsentDialect;
  patientAgentId: string;
  providerNpi: string;
  /** `consented_actions` (A) or `scope` (B), verbatim; the Neuron does not interpret them. */
  consentedActions: string[];
  /** `iat` / `issued_at`; optional in both dialects. */
  issuedAt: Date | null;
  /** `exp` / `expires_at`; required. */
  expiresAt: Date;
  /** The decoded claims JSON text exactly as signed, for storage. */
  claimsJson: string;
}

export interface VerifyConsentTokenInput {
  payloadB64: string;
  signatureB64: string;
  /** Imported once by the caller (see importPatientPublicKey) and reused for the challenge. */
  patientPublicKey: KeyObject;
  /** patient_agent_id from handshake.auth. */
  patientAgentId: string;
  /** Current time in epoch milliseconds. */
  now: number;
  /** Allowed clock difference each way; defaults to the spec's 60 s. */
  clockSkewMs?: number;
}

/** The spec's clock skew allowance (section 3, rule 5); config handshake.clock_skew_seconds. */
export const DEFAULT_CLOCK_SKEW_MS = 60_000;

/** 9999-12-31T23:59:59Z: the last second an ISO-8601 four-digit year can express. */
const MAX_UNIX_SECONDS = 253_402_300_799;

const PUBLIC_MESSAGES: Record<ConsentFailureReason, string> = {
  INVALID_SIGNATURE: 'consent token signature does not verify',
  MALFORMED_TOKEN: 'consent token claims are malformed',
  PATIENT_MISMATCH: 'consent token was issued for a different patient agent',
  CONSENT_EXPIRED: 'consent token has expired',
  NOT_YET_VALID: 'consent token is not yet valid',
};

function consentFailed(reason: ConsentFailureReason, logDetail?: string): ProtocolError {
  // logDetail names the failed rule for the log; it never holds claim values.
  return new ProtocolError('CONSENT_FAILED', {
    reason,
    message: PUBLIC_MESSAGES[reason],
    ...(logDetail === undefined ? {} : { cause: new Error(logDetail) }),
  });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const NPI = /^[0-9]{10}$/;
const VISIBLE_ASCII = /^[\x21-\x7E]+$/;
const NO_CONTROL = /^[^\u0000-\u001F\u007F]+$/;

const DIALECT_A_ONLY = ['consented_actions', 'iat', 'exp'] as const;
const DIALECT_B_ONLY = ['scope', 'issued_at', 'expires_at'] as const;

type ParsedClaims = Omit<ConsentClaims, 'claimsJson'>;

function hasAny(claims: object, names: readonly string[]): boolean {
  for (const name of names) if (Object.hasOwn(claims, name)) return true;
  return false;
}

function unixSeconds(value: unknown): number | null {
  // JWT-style NumericDate: a non-negative number of seconds, fractions allowed.
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_UNIX_SECONDS) return null;
  return Math.round(value * 1000);
}

function isoTime(value: unknown): number | null {
  return typeof value === 'string' ? parseIsoUtc(value) : null;
}

/** Validates the claims object; returns the failed rule as a string (log detail) on failure. */
function parseClaims(value: unknown): ParsedClaims | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'claims are not a JSON object';
  const claims = value as Record<string, unknown>;
  const a = hasAny(claims, DIALECT_A_ONLY);
  const b = hasAny(claims, DIALECT_B_ONLY);
  if (a && b) return 'claims mix dialect A and dialect B fields';
  if (!a && !b) return 'claims carry no expiry';
  const dialect: ConsentDialect = a ? 'A' : 'B';

  const patientAgentId = claims.patient_agent_id;
  if (typeof patientAgentId !== 'string' || patientAgentId.length > B.agentIdMaxChars || !VISIBLE_ASCII.test(patientAgentId)) {
    return 'patient_agent_id missing or malformed';
  }
  const providerNpi = claims.provider_npi;
  if (typeof providerNpi !== 'string' || !NPI.test(providerNpi)) return 'provider_npi missing or malformed';

  const actions = dialect === 'A' ? claims.consented_actions : claims.scope;
  if (!Array.isArray(actions) || actions.length > B.actionsMaxCount) return 'actions missing, not an array or too many';
  for (const action of actions) {
    if (typeof action !== 'string' || action.length > B.actionMaxChars || !NO_CONTROL.test(action)) {
      return 'an action is not a bounded string';
    }
  }

  const rawIssued = dialect === 'A' ? claims.iat : claims.issued_at;
  const rawExpires = dialect === 'A' ? claims.exp : claims.expires_at;
  const read = dialect === 'A' ? unixSeconds : isoTime;
  const expiresMs = rawExpires === undefined ? null : read(rawExpires);
  if (expiresMs === null) return 'expiry missing or malformed';
  let issuedMs: number | null = null;
  if (rawIssued !== undefined) {
    issuedMs = read(rawIssued);
    if (issuedMs === null) return 'issue time malformed';
    if (issuedMs > expiresMs) return 'token expires before it was issued';
  }
  return {
    dialect,
    patientAgentId,
    providerNpi,
    consentedActions: actions as string[],
    issuedAt: issuedMs === null ? null : new Date(issuedMs),
    expiresAt: new Date(expiresMs),
  };
}

/** Verifies a consent token; throws ProtocolError CONSENT_FAILED with the spec's reason. */
export function verifyConsentToken(input: VerifyConsentTokenInput): ConsentClaims {
  const skew = input.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;

  const signature = decodeBase64url(input.signatureB64, ED25519_SIGNATURE_BYTES);
  if (signature === null) throw consentFailed('INVALID_SIGNATURE', 'signature is not 64 bytes of base64url');
  if (!isCanonicalSignatureBytes(signature)) throw consentFailed('INVALID_SIGNATURE', 'signature S is not below the group order');
  const payload = input.payloadB64.length <= B.tokenPayloadMaxChars ? decodeBase64url(input.payloadB64) : null;
  if (payload === null || payload.length === 0) throw consentFailed('MALFORMED_TOKEN', 'payload is not bounded base64url');

  // 1. signature over the exact received bytes
  if (!verify(null, payload, input.patientPublicKey, signature)) throw consentFailed('INVALID_SIGNATURE');

  // 2. claims
  let claimsJson: string;
  let value: unknown;
  try {
    claimsJson = UTF8.decode(payload);
    value = JSON.parse(claimsJson);
  } catch {
    throw consentFailed('MALFORMED_TOKEN', 'payload is not UTF-8 JSON');
  }
  // A repeated key reads differently in different parsers; the signed claims must mean one thing.
  if (findDuplicateKey(claimsJson) !== null) throw consentFailed('MALFORMED_TOKEN', 'claims repeat a key');
  const parsed = parseClaims(value);
  if (typeof parsed === 'string') throw consentFailed('MALFORMED_TOKEN', parsed);

  // 3. patient
  if (parsed.patientAgentId !== input.patientAgentId) throw consentFailed('PATIENT_MISMATCH');

  // 4. time, with skew either way
  if (parsed.issuedAt !== null && parsed.issuedAt.getTime() > input.now + skew) throw consentFailed('NOT_YET_VALID');
  if (input.now >= parsed.expiresAt.getTime() + skew) throw consentFailed('CONSENT_EXPIRED');

  return { ...parsed, claimsJson };
}

export interface ConsentTokenClaimsInput {
  patientAgentId: string;
  providerNpi: string;
  consentedActions: readonly string[];
  /** Omitted from the token when null or absent. Dialect A stores whole seconds (rounded down). */
  issuedAt?: Date | null;
  /** Dialect A stores whole seconds (rounded down). */
  expiresAt: Date;
}

export interface ConsentToken {
  /** base64url of the claims JSON: handshake.auth consent_token_payload. */
  payload: string;
  /** base64url Ed25519 signature: handshake.auth consent_token_signature. */
  signature: string;
  /** The claims JSON text that was signed. */
  claimsJson: string;
}

/**
 * Builds and signs a consent token (patient side). Claims are written in a fixed order:
 * A: patient_agent_id, provider_npi, consented_actions, iat, exp;
 * B: patient_agent_id, provider_npi, scope, issued_at, expires_at.
 * Throws TypeError when the result would not pass verifyConsentToken's claim rules.
 */
export function createConsentToken(claims: ConsentTokenClaimsInput, privateKey: KeyObject, dialect: ConsentDialect = 'A'): ConsentToken {
  const issued = claims.issuedAt ?? null;
  const body: Record<string, unknown> = { patient_agent_id: claims.patientAgentId, provider_npi: claims.providerNpi };
  if (dialect === 'A') {
    body.consented_actions = [...claims.consentedActions];
    if (issued !== null) body.iat = Math.floor(issued.getTime() / 1000);
    body.exp = Math.floor(claims.expiresAt.getTime() / 1000);
  } else {
    body.scope = [...claims.consentedActions];
    if (issued !== null) body.issued_at = issued.toISOString();
    body.expires_at = claims.expiresAt.toISOString();
  }
  const problem = parseClaims(body);
  if (typeof problem === 'string') throw new TypeError(`cannot create consent token: ${problem}`);
  const claimsJson = JSON.stringify(body);
  const bytes = Buffer.from(claimsJson, 'utf8');
  return { payload: encodeBase64url(bytes), signature: encodeBase64url(sign(null, bytes, privateKey)), claimsJson };
}
