/**
 * Relationship notices (docs/providers.md, "Relationship notices"): the JSON body the Neuron
 * posts to a provider's notification URL, or that the provider pulls from its feed. A pushed
 * notice is signed: `Neuron-Signature: ed25519=<base64url of the 64-byte signature>` by the
 * organization key, over the exact bytes of the body. The Neuron's signing side is in its
 * outbox; the checking side is here, for the Neuron's tests and for every provider CareAgent.
 */
import { verify } from 'node:crypto';
import { decodeBase64url } from './base64url.ts';
import { ED25519_SIGNATURE_BYTES, importPublicKey } from './keys.ts';
import type { SignedPayload } from './messages.ts';

/** The headers a pushed notice carries (HTTP header names are case-insensitive). */
export const NOTICE_HEADERS = {
  signature: 'Neuron-Signature',
  eventId: 'Neuron-Event-Id',
  eventType: 'Neuron-Event-Type',
  keyId: 'Neuron-Key-Id',
  publicKey: 'Neuron-Public-Key',
  attempt: 'Neuron-Delivery-Attempt',
} as const;

/** The Neuron-Signature scheme of provider notices. */
export const NOTICE_SIGNATURE_PREFIX = 'ed25519=';

/** One relationship notice, as pushed and as the feed lists it; a newer Neuron may add fields. */
export interface RelationshipNotice {
  /** Stable across every delivery of the same notice: drop one already processed. */
  event_id: string;
  relationship_id: string;
  patient_agent_id: string;
  patient_public_key: string;
  patient_endpoint: string;
  consented_actions: string[];
  established_at: string;
  /** The relationship attestation the patient received; check it with verifyAttestation. */
  attestation: SignedPayload;
  [extra: string]: unknown;
}

/**
 * Checks a pushed notice: `signatureHeader` (the Neuron-Signature header) must be
 * `ed25519=<sig>` over exactly `body` (the raw request body, before any parsing) under
 * `trustedPublicKey` (the organization key the provider learned out of band, such as the
 * attestation's neuron_public_key or GET /v1/organization). Never trust the Neuron-Public-Key
 * header on its own: anyone can send a key together with a matching signature.
 */
export function verifyProviderNotice(body: string | Uint8Array, signatureHeader: string | undefined, trustedPublicKey: string): boolean {
  if (signatureHeader === undefined || !signatureHeader.startsWith(NOTICE_SIGNATURE_PREFIX)) return false;
  const signature = decodeBase64url(signatureHeader.slice(NOTICE_SIGNATURE_PREFIX.length), ED25519_SIGNATURE_BYTES);
  const key = importPublicKey(trustedPublicKey);
  if (signature === null || key === null) return false;
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return verify(null, bytes, key, signature);
}
