/**
 * Proof of key possession (shared/spec/handshake.md section 4, steps 2-3): the Neuron sends 32
 * random bytes as 64 lowercase hex characters; the patient signs the 32 raw bytes (not the hex
 * text) and returns the signature.
 */
import { randomFillSync, sign, verify, type KeyObject } from 'node:crypto';
import { decodeBase64url, encodeBase64url } from './base64url.ts';
import { ED25519_SIGNATURE_BYTES, isCanonicalSignatureBytes } from './keys.ts';

export const NONCE_BYTES = 32;
const NONCE_HEX = /^[0-9a-f]{64}$/;

export interface Nonce {
  /** The 32 raw bytes: what gets signed and verified. */
  bytes: Buffer;
  /** The 64-char lowercase hex form sent in handshake.challenge. */
  hex: string;
}

/**
 * Nonces are cut from a block of CSPRNG output filled 64 at a time (2 KiB): one call into the
 * random generator costs several microseconds whatever its size, like Node's own randomUUID, which
 * buffers the same way. Every block is a new buffer, never refilled, so a nonce's bytes never change
 * while a session holds them, and no two nonces share a byte.
 */
const NONCES_PER_BLOCK = 64;
let nonceBlock: Buffer = Buffer.alloc(0);
let nonceOffset = 0;

/** A fresh nonce from the CSPRNG. */
export function createNonce(): Nonce {
  if (nonceOffset === nonceBlock.length) {
    nonceBlock = randomFillSync(Buffer.allocUnsafeSlow(NONCE_BYTES * NONCES_PER_BLOCK));
    nonceOffset = 0;
  }
  const bytes = nonceBlock.subarray(nonceOffset, nonceOffset + NONCE_BYTES);
  nonceOffset += NONCE_BYTES;
  return { bytes, hex: bytes.toString('hex') };
}

/** The raw bytes of a 64-char lowercase hex nonce, or null when it is not one. */
export function nonceFromHex(hex: string): Buffer | null {
  return NONCE_HEX.test(hex) ? Buffer.from(hex, 'hex') : null;
}

/** True when `signedNonceB64` is a valid signature over the 32 raw nonce bytes under `publicKey`. */
export function verifyChallengeResponse(nonceBytes: Uint8Array, signedNonceB64: string, publicKey: KeyObject): boolean {
  if (nonceBytes.length !== NONCE_BYTES) return false;
  const signature = decodeBase64url(signedNonceB64, ED25519_SIGNATURE_BYTES);
  return signature !== null && isCanonicalSignatureBytes(signature) && verify(null, nonceBytes, publicKey, signature);
}

/** Patient side: the signed_nonce for a handshake.challenge nonce (hex text or raw bytes). */
export function signChallenge(nonce: string | Uint8Array, privateKey: KeyObject): string {
  const bytes = typeof nonce === 'string' ? nonceFromHex(nonce) : nonce;
  if (bytes === null || bytes.length !== NONCE_BYTES) throw new TypeError('a challenge nonce is 32 bytes (64 lowercase hex chars)');
  return encodeBase64url(sign(null, bytes, privateKey));
}
