/**
 * Signatures on delivered notices. Both kinds sign the exact bytes of the body that is posted,
 * so a receiver verifies the raw request body before parsing it and never re-serialises.
 *
 *   provider notices  Neuron-Signature: ed25519=<base64url of the 64-byte Ed25519 signature>
 *                     by the organization key; Neuron-Key-Id and Neuron-Public-Key name the key
 *   webhooks          Neuron-Signature: hmac-sha256=<hex of HMAC-SHA256(subscription secret, body)>
 *
 * docs/providers.md documents both for receivers. Pure apart from the crypto calls.
 */
import { createHmac, timingSafeEqual, verify } from 'node:crypto';
import type { OrganizationKey } from '../organization/keys.ts';
import { decodeBase64url } from '../protocol/base64url.ts';
import { ED25519_SIGNATURE_BYTES, importPublicKey } from '../protocol/keys.ts';

export const HEADER = {
  signature: 'Neuron-Signature',
  eventId: 'Neuron-Event-Id',
  eventType: 'Neuron-Event-Type',
  keyId: 'Neuron-Key-Id',
  publicKey: 'Neuron-Public-Key',
  attempt: 'Neuron-Delivery-Attempt',
} as const;

const ED25519_PREFIX = 'ed25519=';
const HMAC_PREFIX = 'hmac-sha256=';

/** The headers that sign a provider notice body with the organization key. */
export function providerNoticeSignatureHeaders(key: OrganizationKey, body: string): Record<string, string> {
  return {
    [HEADER.signature]: `${ED25519_PREFIX}${key.sign(Buffer.from(body, 'utf8'))}`,
    [HEADER.keyId]: key.id,
    [HEADER.publicKey]: key.publicKey,
  };
}

/**
 * Checks a provider notice: `signatureHeader` must be `ed25519=<sig>` over exactly `body` under
 * `trustedPublicKey` (the organization key the provider learned out of band, for example from
 * GET /v1/organization or the attestation's neuron_public_key). Never trust the Neuron-Public-Key
 * header on its own: anyone can send a key together with a matching signature.
 */
export function verifyProviderNotice(body: string | Uint8Array, signatureHeader: string | undefined, trustedPublicKey: string): boolean {
  if (signatureHeader === undefined || !signatureHeader.startsWith(ED25519_PREFIX)) return false;
  const signature = decodeBase64url(signatureHeader.slice(ED25519_PREFIX.length), ED25519_SIGNATURE_BYTES);
  const key = importPublicKey(trustedPublicKey);
  if (signature === null || key === null) return false;
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return verify(null, bytes, key, signature);
}

/** `hmac-sha256=<hex>` over exactly `body`. */
export function webhookSignature(secret: string, body: string | Uint8Array): string {
  return `${HMAC_PREFIX}${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Constant-time check of a webhook's Neuron-Signature header. */
export function verifyWebhookSignature(secret: string, body: string | Uint8Array, signatureHeader: string | undefined): boolean {
  if (signatureHeader === undefined) return false;
  const expected = Buffer.from(webhookSignature(secret, body), 'utf8');
  const presented = Buffer.from(signatureHeader, 'utf8');
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}
