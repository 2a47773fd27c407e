// The spec's test vectors (spec/vectors.json, the repository's copy of the network's
// shared/spec/vectors.json) must reproduce byte for byte.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPublicKey, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  createConsentToken,
  importPatientPublicKey,
  nonceFromHex,
  privateKeyFromSeed,
  publicKeyToBase64url,
  signChallenge,
  verifyChallengeResponse,
  verifyConsentToken,
} from './index.ts';

interface Vectors {
  patient: { seed_hex: string; private_key_d: string; public_key: string };
  consent_token_dialect_a: { claims_json: string; payload: string; signature: string };
  consent_token_dialect_b: { claims_json: string; payload: string; signature: string };
  challenge: { nonce_hex: string; signed_nonce: string };
  negative: { signature_over_hex_text: string };
}
const vectors = JSON.parse(readFileSync(new URL('../../../../spec/vectors.json', import.meta.url), 'utf8')) as Vectors;

const seed = Buffer.from(vectors.patient.seed_hex, 'hex');
const privateKey = privateKeyFromSeed(seed);
const publicKey = createPublicKey(privateKey);

// A clock inside [iat, exp] of both tokens: 2026-01-01T12:00:00Z.
const NOW = Date.parse('2026-01-01T12:00:00.000Z');

describe('spec test vectors', () => {
  it('derives the patient key from the seed', () => {
    assert.equal(seed.toString('base64url'), vectors.patient.private_key_d);
    assert.equal(privateKey.export({ format: 'jwk' }).d, vectors.patient.private_key_d);
    assert.equal(publicKeyToBase64url(publicKey), vectors.patient.public_key);
    // The wire key imports to the same key.
    const imported = importPatientPublicKey(vectors.patient.public_key);
    assert.ok(imported.equals(publicKey));
  });

  for (const [dialect, vector] of [
    ['A', vectors.consent_token_dialect_a],
    ['B', vectors.consent_token_dialect_b],
  ] as const) {
    it(`dialect ${dialect}: the payload is base64url of the claims JSON`, () => {
      assert.equal(Buffer.from(vector.claims_json, 'utf8').toString('base64url'), vector.payload);
    });

    it(`dialect ${dialect}: createConsentToken reproduces payload and signature exactly`, () => {
      const claims = JSON.parse(vector.claims_json) as Record<string, unknown>;
      const token = createConsentToken(
        {
          patientAgentId: claims.patient_agent_id as string,
          providerNpi: claims.provider_npi as string,
          consentedActions: (dialect === 'A' ? claims.consented_actions : claims.scope) as string[],
          issuedAt: new Date(dialect === 'A' ? (claims.iat as number) * 1000 : (claims.issued_at as string)),
          expiresAt: new Date(dialect === 'A' ? (claims.exp as number) * 1000 : (claims.expires_at as string)),
        },
        privateKey,
        dialect,
      );
      assert.equal(token.claimsJson, vector.claims_json);
      assert.equal(token.payload, vector.payload);
      assert.equal(token.signature, vector.signature);
    });

    it(`dialect ${dialect}: verifies with a clock inside [iat, exp]`, () => {
      const claims = verifyConsentToken({
        payloadB64: vector.payload,
        signatureB64: vector.signature,
        patientPublicKey: importPatientPublicKey(vectors.patient.public_key),
        patientAgentId: 'patient-agent-123',
        now: NOW,
      });
      assert.equal(claims.dialect, dialect);
      assert.equal(claims.patientAgentId, 'patient-agent-123');
      assert.equal(claims.providerNpi, '1679576722');
      assert.equal(claims.claimsJson, vector.claims_json);
      assert.deepEqual(claims.consentedActions, dialect === 'A' ? ['office_visit', 'lab_results'] : ['read:medications', 'read:allergies']);
      assert.equal(claims.issuedAt?.toISOString(), '2026-01-01T00:00:00.000Z');
      assert.equal(claims.expiresAt.toISOString(), '2026-01-02T00:00:00.000Z');
    });
  }

  it('challenge: the signature over the 32 raw nonce bytes reproduces and verifies', () => {
    const nonce = nonceFromHex(vectors.challenge.nonce_hex);
    assert.ok(nonce);
    assert.equal(nonce.length, 32);
    assert.equal(signChallenge(vectors.challenge.nonce_hex, privateKey), vectors.challenge.signed_nonce);
    assert.equal(signChallenge(nonce, privateKey), vectors.challenge.signed_nonce);
    assert.equal(verifyChallengeResponse(nonce, vectors.challenge.signed_nonce, publicKey), true);
  });

  it('challenge: a signature over the hex text does not verify as a challenge response', () => {
    const nonce = nonceFromHex(vectors.challenge.nonce_hex);
    assert.ok(nonce);
    assert.equal(verifyChallengeResponse(nonce, vectors.negative.signature_over_hex_text, publicKey), false);
    // It is a real signature, just over the wrong bytes (the 64 hex characters).
    const overHex = sign(null, Buffer.from(vectors.challenge.nonce_hex, 'utf8'), privateKey).toString('base64url');
    assert.equal(overHex, vectors.negative.signature_over_hex_text);
  });
});
