import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { ProtocolError } from './errors.ts';
import {
  importPatientPublicKey,
  importPublicKey,
  isAcceptablePublicKeyBytes,
  isCanonicalSignatureBytes,
  isEd25519Point,
  privateKeyFromSeed,
  publicKeyToBase64url,
} from './keys.ts';

// ---- independent edwards25519 arithmetic (affine, BigInt) to check the module's constants ----
const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const mod = (a: bigint): bigint => ((a % P) + P) % P;
function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  let base = mod(b);
  for (let k = e; k > 0n; k >>= 1n) {
    if (k & 1n) r = (r * base) % P;
    base = (base * base) % P;
  }
  return r;
}
const inv = (a: bigint): bigint => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));
type Point = [bigint, bigint];
function add([x1, y1]: Point, [x2, y2]: Point): Point {
  const t = (((((((D * x1) % P) * x2) % P) * y1) % P) * y2) % P;
  return [mod((x1 * y2 + y1 * x2) * inv(1n + t)), mod((y1 * y2 + x1 * x2) * inv(1n - t))];
}
function mul(k: bigint, p: Point): Point {
  let r: Point = [0n, 1n];
  let q = p;
  for (let n = k; n > 0n; n >>= 1n) {
    if (n & 1n) r = add(r, q);
    q = add(q, q);
  }
  return r;
}
function recoverX(y: bigint): bigint | null {
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = pow(u * inv(v), (P + 3n) / 8n);
  if (mod(v * x * x - u) !== 0n) {
    x = (x * pow(2n, (P - 1n) / 4n)) % P;
    if (mod(v * x * x - u) !== 0n) return null;
  }
  return x;
}
function encode([x, y]: Point): Buffer {
  const out = Buffer.alloc(32);
  let v = y | ((x & 1n) << 255n);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
function yBytes(y: bigint, signBit = 0): Buffer {
  const out = Buffer.alloc(32);
  let v = y;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[31]! |= signBit << 7;
  return out;
}

function smallOrderPoints(): Buffer[] {
  for (let y = 2n; ; y++) {
    const x = recoverX(y);
    if (x === null) continue;
    const t = mul(L, [x, y]); // the torsion component of this point
    const t4 = mul(4n, t);
    if (t4[0] === 0n && t4[1] === 1n) continue; // order divides 4; need a generator of order 8
    return Array.from({ length: 8 }, (_, i) => encode(mul(BigInt(i), t)));
  }
}

describe('Ed25519 public keys', () => {
  it('imports a generated key and exports the same 43 chars', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const b64 = publicKeyToBase64url(publicKey);
    assert.equal(b64.length, 43);
    const imported = importPublicKey(b64);
    assert.ok(imported?.equals(publicKey));
  });

  it('refuses the eight small-order points itself, before any verify, whatever OpenSSL would say', () => {
    // Under a small-order key the forgery R = identity, S = 0 verifies over any message in some
    // OpenSSL versions (Node 20's) and not in others (Node 24's): the Neuron must not depend on which.
    const points = smallOrderPoints();
    assert.equal(new Set(points.map((p) => p.toString('hex'))).size, 8);
    for (const point of points) {
      const b64 = point.toString('base64url');
      assert.equal(isEd25519Point(point), true, 'a real curve point');
      assert.equal(isAcceptablePublicKeyBytes(point), false, point.toString('hex'));
      assert.equal(importPublicKey(b64), null);
      assert.throws(
        () => importPatientPublicKey(b64),
        (error: unknown) => error instanceof ProtocolError && error.code === 'CONSENT_FAILED' && error.reason === 'INVALID_SIGNATURE',
      );
    }
    // The same points in their non-canonical spellings (y + p where it fits in 255 bits, the sign
    // bit on x = 0) are refused as well, by the canonical-encoding check.
    for (const point of points) {
      const y = BigInt(`0x${Buffer.from(point).reverse().toString('hex')}`) & ((1n << 255n) - 1n);
      if (y + P < 1n << 255n) assert.equal(isAcceptablePublicKeyBytes(yBytes(y + P, point[31]! >> 7)), false);
    }
  });

  it('refuses a signature whose S is not below the group order (RFC 8032 5.1.7) before any verify', () => {
    const lBytes = Buffer.alloc(32);
    let v = L;
    for (let i = 0; i < 32; i++, v >>= 8n) lBytes[i] = Number(v & 0xffn);
    const { privateKey } = generateKeyPairSync('ed25519');
    const signature = sign(null, Buffer.from('consent claims'), privateKey);
    assert.equal(isCanonicalSignatureBytes(signature), true);
    // S + L: the same signature spelled again; S = L; S = 2^256 - 1.
    let s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString('hex')}`) + L;
    const sPlusL = Buffer.from(signature);
    for (let i = 0; i < 32; i++, s >>= 8n) sPlusL[32 + i] = Number(s & 0xffn);
    assert.equal(isCanonicalSignatureBytes(sPlusL), false);
    assert.equal(isCanonicalSignatureBytes(Buffer.concat([signature.subarray(0, 32), lBytes])), false);
    assert.equal(isCanonicalSignatureBytes(Buffer.concat([signature.subarray(0, 32), Buffer.alloc(32, 0xff)])), false);
    const lMinusOne = Buffer.from(lBytes);
    lMinusOne[0]! -= 1;
    assert.equal(isCanonicalSignatureBytes(Buffer.concat([signature.subarray(0, 32), lMinusOne])), true, 'L - 1 is the largest S');
    assert.equal(isCanonicalSignatureBytes(signature.subarray(0, 63)), false);
  });

  it('rejects non-canonical encodings: y >= p and the sign bit on x = 0', () => {
    for (let k = 0n; k < 19n; k++) {
      const bytes = yBytes(P + k);
      assert.equal(isAcceptablePublicKeyBytes(bytes), false, `y = p + ${k}`);
      assert.equal(isEd25519Point(bytes), false);
    }
    const allOnes = Buffer.alloc(32, 0xff);
    assert.equal(isAcceptablePublicKeyBytes(allOnes), false);
    assert.equal(isAcceptablePublicKeyBytes(yBytes(1n, 1)), false);
    assert.equal(isAcceptablePublicKeyBytes(yBytes(P - 1n, 1)), false);
    // p - 20 is an ordinary canonical value (it may or may not be on the curve).
    assert.equal(isAcceptablePublicKeyBytes(yBytes(P - 20n)), true);
  });

  it('off-curve keys import but no signature verifies under them', () => {
    let found = 0;
    for (let y = 2n; found < 5; y++) {
      if (recoverX(y) !== null) continue;
      found++;
      const bytes = yBytes(y);
      assert.equal(isEd25519Point(bytes), false);
      const key = importPublicKey(bytes.toString('base64url'));
      assert.ok(key, 'cheap checks let it through');
      for (let i = 0; i < 20; i++) assert.equal(verify(null, randomBytes(40), key, randomBytes(64)), false);
      assert.equal(verify(null, Buffer.alloc(0), key, Buffer.concat([yBytes(1n), Buffer.alloc(32)])), false);
    }
  });

  it('isEd25519Point agrees with real keys', () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey } = generateKeyPairSync('ed25519');
      assert.equal(isEd25519Point(Buffer.from(publicKeyToBase64url(publicKey), 'base64url')), true);
    }
  });

  it('importPatientPublicKey throws CONSENT_FAILED for an unusable key', () => {
    const identity = yBytes(1n).toString('base64url');
    assert.throws(
      () => importPatientPublicKey(identity),
      (error: unknown) =>
        error instanceof ProtocolError &&
        error.code === 'CONSENT_FAILED' &&
        error.reason === 'INVALID_SIGNATURE' &&
        !error.message.includes(identity),
    );
  });

  it('returns null for text that is not a 43-char canonical key', () => {
    const good = publicKeyToBase64url(generateKeyPairSync('ed25519').publicKey);
    assert.equal(importPublicKey(good.slice(1)), null);
    assert.equal(importPublicKey(`${good}A`), null);
    assert.equal(importPublicKey(`${good.slice(0, 42)}=`), null);
    assert.equal(importPublicKey(`+${good.slice(1)}`), null);
  });

  it('derives a private key from a 32-byte seed', () => {
    const seed = randomBytes(32);
    const key = privateKeyFromSeed(seed);
    const sig = sign(null, Buffer.from('x'), key);
    assert.equal(sig.length, 64);
    assert.throws(() => privateKeyFromSeed(randomBytes(31)), RangeError);
  });
});
