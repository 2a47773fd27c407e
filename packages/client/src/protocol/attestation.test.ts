import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { AttestationError, signAttestation, verifyAttestation, type AttestationFields } from './attestation.ts';
import { publicKeyToBase64url } from './keys.ts';

const neuron = generateKeyPairSync('ed25519');
const NEURON_KEY = publicKeyToBase64url(neuron.publicKey);
const fields: AttestationFields = {
  relationship_id: '0b9a3f8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
  patient_agent_id: 'patient-agent-123',
  patient_public_key: publicKeyToBase64url(generateKeyPairSync('ed25519').publicKey),
  provider_npi: '1679576722',
  provider_public_key: null,
  consented_actions: ['office_visit', 'lab_results'],
  organization_npi: '1245319599',
  issued_at: '2026-03-01T12:00:00.000Z',
  neuron_public_key: NEURON_KEY,
};

function failsWith(reason: string, fn: () => unknown): void {
  assert.throws(fn, (error: unknown) => error instanceof AttestationError && error.reason === reason);
}

/** Signs arbitrary JSON as if it were an attestation. */
function signed(json: string) {
  const bytes = Buffer.from(json);
  return { payload: bytes.toString('base64url'), signature: sign(null, bytes, neuron.privateKey).toString('base64url') };
}

describe('relationship attestation', () => {
  it('round-trips with the documented fields in order', () => {
    const att = signAttestation(fields, neuron.privateKey);
    const json = Buffer.from(att.payload, 'base64url').toString('utf8');
    assert.deepEqual(Object.keys(JSON.parse(json)), [
      'v',
      'type',
      'relationship_id',
      'patient_agent_id',
      'patient_public_key',
      'provider_npi',
      'provider_public_key',
      'consented_actions',
      'organization_npi',
      'issued_at',
      'neuron_public_key',
    ]);
    const verified = verifyAttestation(att, NEURON_KEY);
    assert.deepEqual(verified, { v: 1, type: 'careagent.relationship_attestation', ...fields });
    // a KeyObject works too
    assert.deepEqual(verifyAttestation(att, neuron.publicKey), verified);
  });

  it('carries a provider key when there is one', () => {
    const providerKey = publicKeyToBase64url(generateKeyPairSync('ed25519').publicKey);
    const att = signAttestation({ ...fields, provider_public_key: providerKey }, neuron.privateKey);
    assert.equal(verifyAttestation(att, NEURON_KEY, { provider_public_key: providerKey }).provider_public_key, providerKey);
  });

  it('detects a tampered payload or signature', () => {
    const att = signAttestation(fields, neuron.privateKey);
    const json = Buffer.from(att.payload, 'base64url').toString('utf8');
    const tampered = Buffer.from(json.replace('office_visit', 'office_visiT')).toString('base64url');
    failsWith('INVALID_SIGNATURE', () => verifyAttestation({ ...att, payload: tampered }, NEURON_KEY));
    const sig = Buffer.from(att.signature, 'base64url');
    sig[10] = sig[10]! ^ 0x40;
    failsWith('INVALID_SIGNATURE', () => verifyAttestation({ ...att, signature: sig.toString('base64url') }, NEURON_KEY));
  });

  it('rejects a signature by another key, and a payload naming another Neuron key', () => {
    const other = generateKeyPairSync('ed25519');
    const att = signAttestation(fields, other.privateKey);
    failsWith('INVALID_SIGNATURE', () => verifyAttestation(att, NEURON_KEY));
    // signed by `other`, verified under `other`, but the payload names NEURON_KEY
    failsWith('KEY_MISMATCH', () => verifyAttestation(att, publicKeyToBase64url(other.publicKey)));
  });

  it('checks expected fields', () => {
    const att = signAttestation(fields, neuron.privateKey);
    verifyAttestation(att, NEURON_KEY, { relationship_id: fields.relationship_id, consented_actions: ['office_visit', 'lab_results'] });
    assert.throws(
      () => verifyAttestation(att, NEURON_KEY, { provider_npi: '1376841239' }),
      (error: unknown) => error instanceof AttestationError && error.reason === 'FIELD_MISMATCH' && error.field === 'provider_npi',
    );
    failsWith('FIELD_MISMATCH', () => verifyAttestation(att, NEURON_KEY, { consented_actions: ['office_visit'] }));
  });

  it('rejects malformed attestations', () => {
    failsWith('MALFORMED', () => verifyAttestation({ payload: 'abc=', signature: 'x' }, NEURON_KEY));
    failsWith('MALFORMED', () => verifyAttestation(signed('not json'), NEURON_KEY));
    const body = { v: 1, type: 'careagent.relationship_attestation', ...fields };
    failsWith('MALFORMED', () => verifyAttestation(signed(JSON.stringify({ ...body, v: 2 })), NEURON_KEY));
    failsWith('MALFORMED', () => verifyAttestation(signed(JSON.stringify({ ...body, extra: 'x' })), NEURON_KEY));
    failsWith('MALFORMED', () => verifyAttestation(signed(JSON.stringify({ ...body, issued_at: '2026-02-30T00:00:00Z' })), NEURON_KEY));
    failsWith('MALFORMED', () => verifyAttestation(signed(JSON.stringify({ ...body, provider_npi: 1679576722 })), NEURON_KEY));
    failsWith('INVALID_KEY', () => verifyAttestation(signAttestation(fields, neuron.privateKey), 'not-a-key'));
  });
});
