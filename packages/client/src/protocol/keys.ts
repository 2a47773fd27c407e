/**
 * Ed25519 keys on the wire: a public key is its raw 32 bytes in base64url (the JWK `x` value),
 * a signature its raw 64 bytes in base64url.
 *
 * Validity of a presented public key. OpenSSL (behind node:crypto) imports any 32 bytes as an
 * Ed25519 public key without checking them, and its verify step then:
 *   - rejects every signature under bytes that do not decode to a curve point, so an off-curve
 *     key can never pass the consent token check (the first thing done with the key);
 *   - reduces a y coordinate >= p and tolerates the sign bit on x = 0, so one point has several
 *     spellings;
 *   - accepts the forged signature (R = identity, S = 0) over ANY message under a small-order key
 *     such as the identity point (we checked this against the Node 20 build).
 * (Newer OpenSSL, as in Node 24, refuses that forgery itself; the Neuron does not rely on either.)
 * So `importPublicKey` rejects, cheaply and before any verify, every non-canonical encoding and
 * every encoding of the eight small-order points; the off-curve case is left to the verify step,
 * which fails deterministically for it. A full on-curve check (`isEd25519Point`) exists for tools
 * and tests, but costs more than a signature verify (BigInt square root), so the handshake does
 * not run it.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { decodeBase64url, encodedLength } from './base64url.ts';
import { ProtocolError } from './errors.ts';

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const ED25519_SEED_BYTES = 32;
/** 43 characters. */
export const PUBLIC_KEY_CHARS = encodedLength(ED25519_PUBLIC_KEY_BYTES);
/** 86 characters. */
export const SIGNATURE_CHARS = encodedLength(ED25519_SIGNATURE_BYTES);

/** DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Canonical encodings of the eight points of small order (the 8-torsion), plus the two spellings
 * of x = 0 points with the sign bit set. A test recomputes the torsion points from the curve.
 */
const SMALL_ORDER_ENCODINGS: readonly Buffer[] = [
  '0100000000000000000000000000000000000000000000000000000000000000', // identity, order 1
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = -1, order 2
  '0000000000000000000000000000000000000000000000000000000000000000', // y = 0, order 4
  '0000000000000000000000000000000000000000000000000000000000000080', // y = 0, order 4
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
  '0100000000000000000000000000000000000000000000000000000000000080', // identity, sign bit set
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', // y = -1, sign bit set
].map((hex) => Buffer.from(hex, 'hex'));

/**
 * True when the y coordinate (the low 255 bits, little-endian) is below p = 2^255 - 19.
 * Values >= p are p .. 2^255 - 1: top byte 0x7f (ignoring the sign bit), bytes 30..1 all 0xff
 * and byte 0 >= 0xed.
 */
function isCanonicalY(raw: Uint8Array): boolean {
  if ((raw[31]! & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (raw[i] !== 0xff) return true;
  return raw[0]! < 0xed;
}

function isSmallOrderEncoding(raw: Uint8Array): boolean {
  for (const blocked of SMALL_ORDER_ENCODINGS) if (blocked.equals(raw)) return true;
  return false;
}

/**
 * Cheap structural check of a raw public key: 32 bytes, canonical y, not a small-order point.
 * Off-curve bytes pass here and fail every signature verify (see the module comment).
 */
export function isAcceptablePublicKeyBytes(raw: Uint8Array): boolean {
  return raw.length === ED25519_PUBLIC_KEY_BYTES && isCanonicalY(raw) && !isSmallOrderEncoding(raw);
}

/** The order L of the edwards25519 base point, 2^252 + 27742317777372353535851937790883648493, little-endian. */
const GROUP_ORDER_LE = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

/**
 * RFC 8032 section 5.1.7: a signature whose S (its last 32 bytes, little-endian) is not below L is
 * invalid. Checked by the Neuron itself before any verify, so that a second spelling of a signature
 * (S + L) is refused whatever the OpenSSL version behind node:crypto does with it.
 */
export function isCanonicalSignatureBytes(signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
  for (let i = 31; i >= 0; i -= 1) {
    const s = signature[32 + i]!;
    const l = GROUP_ORDER_LE[i]!;
    if (s !== l) return s < l;
  }
  return false; // S = L
}

/**
 * Imports a base64url public key into a KeyObject, or returns null when the text is not a
 * canonical 43-character encoding or the bytes are not an acceptable key.
 */
export function importPublicKey(publicKeyB64: string): KeyObject | null {
  const raw = decodeBase64url(publicKeyB64, ED25519_PUBLIC_KEY_BYTES);
  if (raw === null || !isAcceptablePublicKeyBytes(raw)) return null;
  // JWK import measured several times faster than wrapping the bytes in SPKI DER.
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKeyB64 }, format: 'jwk' });
}

/**
 * The patient's key from `handshake.auth`. The schema already checked the 43-character shape, so
 * a failure here means the bytes are not a usable Ed25519 key: the spec makes that
 * CONSENT_FAILED, and the consent token cannot verify under it (reason INVALID_SIGNATURE).
 */
export function importPatientPublicKey(publicKeyB64: string): KeyObject {
  const key = importPublicKey(publicKeyB64);
  if (key === null) {
    throw new ProtocolError('CONSENT_FAILED', {
      reason: 'INVALID_SIGNATURE',
      message: 'the patient public key is not a usable Ed25519 key',
    });
  }
  return key;
}

/** The base64url (JWK `x`) form of an Ed25519 public KeyObject. */
export function publicKeyToBase64url(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 key');
  return jwk.x;
}

/** An Ed25519 private KeyObject from its 32-byte seed (RFC 8032 secret key). */
export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== ED25519_SEED_BYTES) throw new RangeError('an Ed25519 seed is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

// ---- full on-curve check (slow; tools and tests only) ----

const P = (1n << 255n) - 19n;
function modP(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}
function powP(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = modP(base);
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}
const D = modP(-121665n * powP(121666n, P - 2n));
const SQRT_M1 = powP(2n, (P - 1n) / 4n);

/**
 * Full RFC 8032 section 5.1.3 decoding: true when the 32 bytes are the canonical encoding of a
 * point on edwards25519 (small-order points included). Costs more than a signature verify.
 */
export function isEd25519Point(raw: Uint8Array): boolean {
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES || !isCanonicalY(raw)) return false;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(raw[i]!);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  const y2 = (y * y) % P;
  const u = modP(y2 - 1n);
  const v = modP(D * y2 + 1n);
  const v3 = (((v * v) % P) * v) % P;
  const v7 = (((v3 * v3) % P) * v) % P;
  let x = (((u * v3) % P) * powP((u * v7) % P, (P - 5n) / 8n)) % P;
  const vx2 = (((v * x) % P) * x) % P;
  if (vx2 !== u) {
    if (vx2 !== modP(-u)) return false;
    x = (x * SQRT_M1) % P;
  }
  return !(x === 0n && sign === 1n);
}
