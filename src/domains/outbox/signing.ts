/**
 * Signatures on delivered notices. Both kinds sign the exact bytes of the body that is posted,
 * so a receiver verifies the raw request body before parsing it and never re-serialises.
 *
 *   provider notices  Neuron-Signature: ed25519=<base64url of the 64-byte Ed25519 signature>
 *                     by the organization key; Neuron-Key-Id and Neuron-Public-Key name the key
 *   webhooks          Neuron-Signature: hmac-sha256=<hex of HMAC-SHA256(subscription secret, body)>
 *
 * docs/providers.md documents both for receivers; provider CareAgents check theirs with
 * verifyProviderNotice from the neuron-careagent-client package. Pure apart from the crypto calls.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { NOTICE_HEADERS, NOTICE_SIGNATURE_PREFIX, verifyProviderNotice } from 'neuron-careagent-client/protocol';
import type { OrganizationKey } from '../../foundation/organization/keys.ts';

/** The delivery headers; the provider notices' own are defined with their check in the client package. */
export const HEADER = NOTICE_HEADERS;
/** The check of a provider notice lives in the client package, which provider CareAgents install. */
export { verifyProviderNotice };

const HMAC_PREFIX = 'hmac-sha256=';

/** The headers that sign a provider notice body with the organization key. */
export function providerNoticeSignatureHeaders(key: OrganizationKey, body: string): Record<string, string> {
  return {
    [HEADER.signature]: `${NOTICE_SIGNATURE_PREFIX}${key.sign(Buffer.from(body, 'utf8'))}`,
    [HEADER.keyId]: key.id,
    [HEADER.publicKey]: key.publicKey,
  };
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
