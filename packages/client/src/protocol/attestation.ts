/**
 * The relationship attestation: the Neuron's signed statement that a relationship exists, handed
 * to both CareAgents so they can check each other later without asking the Neuron again.
 *
 * Wire form `{ payload, signature }`, exactly like the consent token: `payload` is base64url of
 * the UTF-8 JSON text below and `signature` the Neuron's Ed25519 signature over those bytes.
 * Fields, in this order (docs/protocol.md):
 *   v                    1
 *   type                 "careagent.relationship_attestation"
 *   relationship_id      the relationship's UUID
 *   patient_agent_id     as presented in handshake.auth
 *   patient_public_key   43-char base64url, the key that answered the challenge
 *   provider_npi         10 digits
 *   provider_public_key  43-char base64url, or null when the provider registered none
 *   consented_actions    the token's actions, verbatim
 *   organization_npi     10 digits, the organization the Neuron fronts
 *   issued_at            ISO-8601 UTC with milliseconds
 *   neuron_public_key    43-char base64url, the key that signed this attestation
 * A verifier decodes the payload, verifies the signature over those exact bytes under the
 * Neuron key it trusts, then checks that `neuron_public_key` inside names that same key.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { decodeBase64url, encodeBase64url } from './base64url.ts';
import { ED25519_SIGNATURE_BYTES, importPublicKey, publicKeyToBase64url } from './keys.ts';
import { PROTOCOL_BOUNDS as B } from './limits.ts';
import { ActionsField, AgentIdField, NpiField, PublicKeyField, UuidField, type SignedPayload } from './messages.ts';
import { compileCheck } from './schema-check.ts';
import { parseIsoUtc } from './time.ts';

export const ATTESTATION_TYPE = 'careagent.relationship_attestation';
export const ATTESTATION_VERSION = 1;

export const AttestationSchema = Type.Object(
  {
    v: Type.Literal(ATTESTATION_VERSION),
    type: Type.Literal(ATTESTATION_TYPE),
    relationship_id: UuidField,
    patient_agent_id: AgentIdField,
    patient_public_key: PublicKeyField,
    provider_npi: NpiField,
    provider_public_key: Type.Union([PublicKeyField, Type.Null()]),
    consented_actions: ActionsField,
    organization_npi: NpiField,
    issued_at: Type.String({ maxLength: 40 }), // checked by parseIsoUtc; 40 chars covers nanosecond fractions
    neuron_public_key: PublicKeyField,
  },
  // v1 is a closed set: a field we do not know is not something we can vouch for.
  { additionalProperties: false },
);
export type Attestation = Static<typeof AttestationSchema>;
/** What the signer supplies; `v` and `type` are fixed. */
export type AttestationFields = Omit<Attestation, 'v' | 'type'>;

const checkAttestation = compileCheck(AttestationSchema);
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export type AttestationFailure = 'MALFORMED' | 'INVALID_KEY' | 'INVALID_SIGNATURE' | 'KEY_MISMATCH' | 'FIELD_MISMATCH';

export class AttestationError extends Error {
  readonly reason: AttestationFailure;
  /** For FIELD_MISMATCH: the attestation field that differs from the expected value. */
  readonly field: string | undefined;
  constructor(reason: AttestationFailure, message: string, field?: string) {
    super(message);
    this.name = 'AttestationError';
    this.reason = reason;
    this.field = field;
  }
}

/**
 * Signs an attestation with the organization's (Neuron's) private key. The caller passes the
 * matching `neuron_public_key` (deriving it here would cost an export per handshake).
 */
export function signAttestation(fields: AttestationFields, orgPrivateKey: KeyObject): SignedPayload {
  const body: Attestation = {
    v: ATTESTATION_VERSION,
    type: ATTESTATION_TYPE,
    relationship_id: fields.relationship_id,
    patient_agent_id: fields.patient_agent_id,
    patient_public_key: fields.patient_public_key,
    provider_npi: fields.provider_npi,
    provider_public_key: fields.provider_public_key,
    consented_actions: fields.consented_actions,
    organization_npi: fields.organization_npi,
    issued_at: fields.issued_at,
    neuron_public_key: fields.neuron_public_key,
  };
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  return { payload: encodeBase64url(bytes), signature: encodeBase64url(sign(null, bytes, orgPrivateKey)) };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => item === b[i]);
  return a === b;
}

/**
 * Verifies an attestation under the Neuron key the verifier trusts (base64url or KeyObject) and
 * optionally that its fields equal `expected`. Returns the attested fields or throws
 * AttestationError.
 */
export function verifyAttestation(
  attestation: SignedPayload,
  neuronPublicKey: string | KeyObject,
  expected?: Partial<AttestationFields>,
): Attestation {
  let key: KeyObject | null;
  let keyB64: string;
  if (typeof neuronPublicKey === 'string') {
    key = importPublicKey(neuronPublicKey);
    keyB64 = neuronPublicKey;
  } else {
    key = neuronPublicKey;
    keyB64 = publicKeyToBase64url(neuronPublicKey);
  }
  if (key === null) throw new AttestationError('INVALID_KEY', 'the Neuron public key is not a usable Ed25519 key');

  const payload =
    typeof attestation.payload === 'string' && attestation.payload.length <= B.attestationPayloadMaxChars
      ? decodeBase64url(attestation.payload)
      : null;
  const signature = typeof attestation.signature === 'string' ? decodeBase64url(attestation.signature, ED25519_SIGNATURE_BYTES) : null;
  if (payload === null || payload.length === 0 || signature === null) {
    throw new AttestationError('MALFORMED', 'the attestation is not a base64url payload and signature');
  }
  if (!verify(null, payload, key, signature)) throw new AttestationError('INVALID_SIGNATURE', 'the attestation signature does not verify');

  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(payload));
  } catch {
    throw new AttestationError('MALFORMED', 'the attestation payload is not UTF-8 JSON');
  }
  if (!checkAttestation(value) || parseIsoUtc(value.issued_at) === null) {
    throw new AttestationError('MALFORMED', 'the attestation payload does not match the v1 format');
  }
  if (value.neuron_public_key !== keyB64) {
    throw new AttestationError('KEY_MISMATCH', 'the attestation names a different Neuron key than the one that verified it');
  }
  if (expected !== undefined) {
    for (const [field, want] of Object.entries(expected)) {
      if (want === undefined) continue;
      if (!sameValue(value[field as keyof Attestation], want)) {
        throw new AttestationError('FIELD_MISMATCH', `the attestation's ${field} differs from the expected value`, field);
      }
    }
  }
  return value;
}
