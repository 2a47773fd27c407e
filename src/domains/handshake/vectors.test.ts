/**
 * The spec's test vectors (spec/vectors.json, the repository's copy of the network's
 * shared/spec/vectors.json) through a real connection. The vector tokens
 * are valid only on 2026-01-01 and the challenge vector needs a fixed nonce, so these run against
 * a standalone broker (ProtocolServer.start) over the test Neuron's database and key, with its
 * clock and nonce pinned. The Neuron's own broker, on the real clock, refuses the same tokens.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { nonceFromHex, verifyAttestation } from 'neuron-careagent-client/protocol';
import { HandshakeBroker } from './broker.ts';
import { startNeuronWithProvider, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { auditEntries, eventually, writtenFor } from '../../../test/helpers/records.ts';
import { openRaw, type RawHandshake } from '../../../test/helpers/raw-handshake.ts';

interface Vectors {
  patient: { public_key: string };
  consent_token_dialect_a: { claims_json: string; payload: string; signature: string };
  consent_token_dialect_b: { claims_json: string; payload: string; signature: string };
  challenge: { nonce_hex: string; signed_nonce: string };
  negative: { signature_over_hex_text: string };
}
const vectors = JSON.parse(readFileSync(new URL('../../../spec/vectors.json', import.meta.url), 'utf8')) as Vectors;

const AGENT = 'patient-agent-123';
const PROVIDER = '1679576722';
/** Inside [iat, exp] of both vector tokens. */
const VECTOR_NOW = Date.parse('2026-01-01T12:00:00.000Z');

let t: TestNeuron;
let broker: HandshakeBroker;
let url: string;

before(async () => {
  t = await startNeuronWithProvider({ npi: PROVIDER });
  broker = new HandshakeBroker({
    handshake: t.neuron.config.handshake,
    storage: t.neuron.storage,
    audit: t.neuron.audit,
    organizationKey: t.neuron.organizationKey,
    organizationNpi: t.neuron.config.organization.npi,
    pullNoticeHoldMs: t.neuron.config.outbox.backoff_max_ms,
    logger: pino({ level: 'silent' }),
    now: () => VECTOR_NOW,
    createNonce: () => ({ bytes: nonceFromHex(vectors.challenge.nonce_hex)!, hex: vectors.challenge.nonce_hex }),
  });
  await broker.start(0);
  url = `ws://127.0.0.1:${broker.port()}/ws/handshake`;
});
after(async () => {
  await broker.stop();
  await t.stop();
});

function auth(token: { payload: string; signature: string }): Record<string, unknown> {
  return {
    type: 'handshake.auth',
    patient_agent_id: AGENT,
    patient_public_key: vectors.patient.public_key,
    patient_endpoint: 'wss://patient.example/agent',
    consent_token_payload: token.payload,
    consent_token_signature: token.signature,
  };
}

async function challenged(token: { payload: string; signature: string }): Promise<RawHandshake> {
  const raw = await openRaw(url);
  raw.send(auth(token));
  const challenge = await raw.next();
  assert.deepEqual(challenge, {
    type: 'handshake.challenge',
    nonce: vectors.challenge.nonce_hex,
    provider_npi: PROVIDER,
    organization_npi: '1245319599',
  });
  return raw;
}

describe('spec vectors through a connection', () => {
  test('a signature over the hex text instead of the nonce bytes is CHALLENGE_FAILED', async () => {
    const raw = await challenged(vectors.consent_token_dialect_a);
    raw.send({ type: 'handshake.challenge_response', signed_nonce: vectors.negative.signature_over_hex_text });
    const frame = await raw.next();
    assert.equal(frame.code, 'CHALLENGE_FAILED');
    assert.deepEqual(await raw.closed, { code: 4003, reason: '', wasClean: true });
    assert.deepEqual(await writtenFor(t.neuron, AGENT), { relationships: 0, patients: 0, outbox: 0 });
  });

  test('dialect A token and the challenge vector complete a new relationship', async () => {
    const raw = await challenged(vectors.consent_token_dialect_a);
    raw.send({ type: 'handshake.challenge_response', signed_nonce: vectors.challenge.signed_nonce });
    const complete = await raw.next();
    assert.equal(complete.type, 'handshake.complete');
    assert.equal(complete.status, 'new');
    assert.deepEqual(complete.consented_actions, ['office_visit', 'lab_results']);
    // Both close frames crossed before the TCP connection ended (the Neuron releases its socket
    // once its FIN has left, without waiting for the patient's).
    assert.deepEqual(await raw.closed, { code: 1000, reason: '', wasClean: true });
    const attested = verifyAttestation(complete.attestation as { payload: string; signature: string }, t.neuron.organizationKey.publicKey);
    assert.equal(attested.issued_at, '2026-01-01T12:00:00.000Z');
    assert.equal(attested.patient_public_key, vectors.patient.public_key);
    const row = await t.neuron.storage.db
      .selectFrom('relationships')
      .selectAll()
      .where('id', '=', complete.relationship_id as string)
      .executeTakeFirstOrThrow();
    // Stored exactly as given: the payload text, not a re-serialisation.
    assert.equal(row.consent_token_payload, vectors.consent_token_dialect_a.payload);
    assert.equal(Buffer.from(row.consent_token_payload, 'base64url').toString('utf8'), vectors.consent_token_dialect_a.claims_json);
    assert.equal(row.consent_expires_at, '2026-01-02T00:00:00.000Z');
  });

  test('dialect B token from the same patient key is `existing`', async () => {
    const raw = await challenged(vectors.consent_token_dialect_b);
    raw.send({ type: 'handshake.challenge_response', signed_nonce: vectors.challenge.signed_nonce });
    const complete = await raw.next();
    assert.equal(complete.status, 'existing');
    assert.deepEqual(complete.consented_actions, ['office_visit', 'lab_results'], 'the relationship keeps its first consent');
    assert.equal((await raw.closed).code, 1000);
    assert.equal(broker.activeSessions().filter((s) => s.status === 'active').length, 0);
  });

  test('on the real clock the Neuron refuses the vector tokens as expired', async () => {
    const before = (await auditEntries(t.neuron, 'handshake.failed')).length;
    for (const token of [vectors.consent_token_dialect_a, vectors.consent_token_dialect_b]) {
      const raw = await openRaw(t.handshakeUrl);
      raw.send(auth(token));
      const frame = await raw.next();
      assert.deepEqual({ code: frame.code, reason: frame.reason }, { code: 'CONSENT_FAILED', reason: 'CONSENT_EXPIRED' });
      assert.equal((await raw.closed).code, 4003);
    }
    await eventually(async () => (await auditEntries(t.neuron, 'handshake.failed')).length === before + 2);
  });
});
