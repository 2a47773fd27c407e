import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { createNonce, nonceFromHex, signChallenge, verifyChallengeResponse } from './challenge.ts';

const keys = generateKeyPairSync('ed25519');

describe('challenge', () => {
  it('creates 32 random bytes as 64 lowercase hex chars', () => {
    const a = createNonce();
    const b = createNonce();
    assert.equal(a.bytes.length, 32);
    assert.match(a.hex, /^[0-9a-f]{64}$/);
    assert.deepEqual(nonceFromHex(a.hex), a.bytes);
    assert.notEqual(a.hex, b.hex);
  });

  it('cuts nonces from blocks of random bytes: all distinct, and a held nonce never changes when later blocks are drawn', () => {
    const held = createNonce();
    const copy = Buffer.from(held.bytes);
    // Several blocks' worth (64 nonces a block), so refills happen while `held` is alive.
    const later = Array.from({ length: 300 }, () => createNonce());
    assert.deepEqual(held.bytes, copy);
    assert.equal(held.hex, copy.toString('hex'));
    assert.equal(new Set([held, ...later].map((nonce) => nonce.hex)).size, 301);
    for (const nonce of later) assert.equal(nonce.bytes.length, 32);
  });

  it('verifies a signature over the raw bytes under the presented key only', () => {
    const nonce = createNonce();
    const signed = signChallenge(nonce.hex, keys.privateKey);
    assert.equal(signed.length, 86);
    assert.equal(verifyChallengeResponse(nonce.bytes, signed, keys.publicKey), true);
    assert.equal(verifyChallengeResponse(createNonce().bytes, signed, keys.publicKey), false);
    assert.equal(verifyChallengeResponse(nonce.bytes, signed, generateKeyPairSync('ed25519').publicKey), false);
  });

  it('does not accept a signature over the hex text', () => {
    const nonce = createNonce();
    const overText = sign(null, Buffer.from(nonce.hex), keys.privateKey).toString('base64url');
    assert.equal(verifyChallengeResponse(nonce.bytes, overText, keys.publicKey), false);
  });

  it('returns false for malformed signatures and nonces instead of throwing', () => {
    const nonce = createNonce();
    const signed = signChallenge(nonce.bytes, keys.privateKey);
    assert.equal(verifyChallengeResponse(nonce.bytes, signed.slice(1), keys.publicKey), false);
    assert.equal(verifyChallengeResponse(nonce.bytes, `${signed}=`, keys.publicKey), false);
    assert.equal(verifyChallengeResponse(nonce.bytes.subarray(1), signed, keys.publicKey), false);
  });

  it('rejects nonces that are not 64 lowercase hex chars', () => {
    assert.equal(nonceFromHex('AB'.repeat(32)), null);
    assert.equal(nonceFromHex('ab'.repeat(31)), null);
    assert.equal(nonceFromHex('zz'.repeat(32)), null);
    assert.throws(() => signChallenge('AB'.repeat(32), keys.privateKey), TypeError);
  });
});
