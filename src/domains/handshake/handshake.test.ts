/**
 * The handshake through real connections to a real Neuron: both dialects, `existing`, the race,
 * and every error code and reason the spec defines, each checked for its single error frame, its
 * close code, its audit entry and for writing nothing else.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { createLogger } from '../../foundation/observability/logger.ts';
import { createConsentToken, establishRelationship, generatePatientKeys, type HandshakeError } from 'neuron-careagent-client';
import { ERROR_CATALOGUE, type ErrorCode } from '../../foundation/errors/index.ts';
import { encodeBase64url, verifyAttestation } from 'neuron-careagent-client/protocol';
import { setStatus } from '../relationships/store.ts';
import { insertBlock } from '../blocks/store.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import { insertProvider, setProviderStatus, startNeuronWithProvider, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { establishAs } from '../../../test/helpers/providers.ts';
import { auditEntries, eventually, writtenFor } from '../../../test/helpers/records.ts';
import { HandshakeService } from './service.ts';
import {
  authMessage,
  authenticate,
  challengeResponse,
  newPatient,
  openRaw,
  type Patient,
  type RawHandshake,
} from '../../../test/helpers/raw-handshake.ts';

const PROVIDER = '1679576722';
const PROVIDER_WITH_KEY = '1649218926';
const PENDING = '1376841239';
const SUSPENDED = '1003000126';
const UNKNOWN = '1234567893';
const PROVIDER_KEY = generatePatientKeys().publicKeyB64;

let t: TestNeuron;
let counter = 0;
const uniquePatient = (label: string): Patient => newPatient(`${label}-${process.pid}-${++counter}`);

before(async () => {
  t = await startNeuronWithProvider(
    { npi: PROVIDER, endpoint: 'wss://provider.example/agent' },
    { config: { handshake: { max_message_bytes: 4_096 } } },
  );
  await insertProvider(t.neuron, { npi: PROVIDER_WITH_KEY, publicKey: PROVIDER_KEY });
  await insertProvider(t.neuron, { npi: PENDING, status: 'pending' });
  await insertProvider(t.neuron, { npi: SUSPENDED, status: 'suspended' });
});
after(async () => t.stop());

function establish(
  patient: Patient,
  providerNpi = PROVIDER,
  extra: { profile?: Record<string, string>; dialect?: 'A' | 'B'; connectionId?: string } = {},
) {
  return establishAs(
    t.handshakeUrl,
    patient,
    providerNpi,
    { ...(extra.profile ? { profile: extra.profile } : {}), ...(extra.connectionId ? { connectionId: extra.connectionId } : {}) },
    { actions: ['office_visit', 'lab_results'], dialect: extra.dialect ?? 'A' },
  );
}

/** One handshake.error frame with this code (and reason), then the catalogue's close code. */
async function expectError(raw: RawHandshake, code: ErrorCode, reason?: string): Promise<void> {
  const frame = await raw.next();
  assert.equal(frame.type, 'handshake.error', JSON.stringify(frame));
  assert.equal(frame.code, code, JSON.stringify(frame));
  if (reason !== undefined) assert.equal(frame.reason, reason);
  else assert.equal(frame.reason, undefined);
  assert.equal(typeof frame.message, 'string');
  const closed = await raw.closed;
  assert.equal(closed.code, ERROR_CATALOGUE[code].closeCode);
  assert.equal(raw.frames.filter((f) => f.type === 'handshake.error').length, 1);
}

/** The failure left only its audit entry (code and reason, nothing the client sent). */
async function expectOnlyFailureAudit(agentId: string, failuresBefore: number, code: ErrorCode, reason?: string): Promise<void> {
  await eventually(
    async () => (await auditEntries(t.neuron, 'handshake.failed')).length > failuresBefore,
    3_000,
    'handshake.failed audit entry',
  );
  const failures = await auditEntries(t.neuron, 'handshake.failed');
  assert.deepEqual(failures[failuresBefore]!.details, reason === undefined ? { code } : { code, reason });
  assert.ok(!JSON.stringify(failures[failuresBefore]).includes(agentId), 'the failure audit names no patient');
  assert.deepEqual(await writtenFor(t.neuron, agentId), { relationships: 0, patients: 0, outbox: 0 });
}

async function failureCount(): Promise<number> {
  return (await auditEntries(t.neuron, 'handshake.failed')).length;
}

/** Runs a raw exchange that must end in `code`, and checks that only the failure audit was written. */
async function refused(
  patient: Patient,
  code: ErrorCode,
  reason: string | undefined,
  drive: (raw: RawHandshake) => Promise<void> | void,
): Promise<void> {
  const before = await failureCount();
  const raw = await openRaw(t.handshakeUrl);
  await drive(raw);
  await expectError(raw, code, reason);
  await expectOnlyFailureAudit(patient.agentId, before, code, reason);
}

function signedPayload(patient: Patient, claims: unknown): { payload: string; signature: string } {
  const bytes = Buffer.from(JSON.stringify(claims), 'utf8');
  return { payload: encodeBase64url(bytes), signature: encodeBase64url(sign(null, bytes, patient.keys.privateKey)) };
}

describe('completing handshakes', () => {
  test('dialect A: new, with the directory entry, provider notice and audit entry written', async () => {
    const patient = uniquePatient('dialect-a');
    const result = await establish(patient, PROVIDER, {
      profile: { display_name: 'Test Patient', date_of_birth: '1990-01-01', favourite_colour: 'blue' } as Record<string, string>,
      connectionId: 'grant-1',
    });
    assert.equal(result.status, 'new');
    assert.equal(result.providerNpi, PROVIDER);
    assert.equal(result.providerEndpoint, 'wss://provider.example/agent');
    assert.equal(result.providerPublicKey, null);
    assert.equal(result.organizationNpi, '1245319599');
    assert.deepEqual(result.consentedActions, ['office_visit', 'lab_results']);
    assert.equal(result.neuronPublicKey, t.neuron.organizationKey.publicKey);

    const db = t.neuron.storage.db;
    const rows = await db.selectFrom('relationships').selectAll().where('patient_agent_id', '=', patient.agentId).execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.id, result.relationshipId);
    assert.equal(rows[0]!.status, 'active');
    assert.equal(rows[0]!.token_dialect, 'A');
    assert.equal(rows[0]!.connection_id, 'grant-1');
    assert.equal(rows[0]!.patient_public_key, patient.keys.publicKeyB64);

    const entry = await db.selectFrom('patients').selectAll().where('patient_agent_id', '=', patient.agentId).executeTakeFirstOrThrow();
    assert.deepEqual(
      JSON.parse(entry.profile!),
      { display_name: 'Test Patient', date_of_birth: '1990-01-01' },
      'unknown profile fields are dropped',
    );
    assert.equal(entry.patient_endpoint, patient.endpoint);

    const notices = await db
      .selectFrom('outbox')
      .selectAll()
      .where('kind', '=', 'provider.relationship')
      .where('body', 'like', `%${patient.agentId}%`)
      .execute();
    assert.equal(notices.length, 1);
    assert.equal(notices[0]!.target, PROVIDER);
    const body = JSON.parse(notices[0]!.body) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), [
      'attestation',
      'consented_actions',
      'established_at',
      'event_id',
      'patient_agent_id',
      'patient_endpoint',
      'patient_public_key',
      'relationship_id',
    ]);
    assert.equal(body.event_id, notices[0]!.event_id);
    assert.equal(body.relationship_id, result.relationshipId);
    assert.equal(body.patient_endpoint, patient.endpoint);
    assert.ok(!notices[0]!.body.includes('Test Patient'), 'no demographics in the provider notice');
    verifyAttestation(body.attestation as { payload: string; signature: string }, t.neuron.organizationKey.publicKey, {
      relationship_id: result.relationshipId,
    });

    const completed = (await auditEntries(t.neuron, 'handshake.completed')).filter(
      (e) => e.details.relationship_id === result.relationshipId,
    );
    assert.equal(completed.length, 1);
    assert.equal(completed[0]!.details.status, 'new');
    assert.equal(completed[0]!.details.connection_id, 'grant-1');
    assert.ok(!JSON.stringify(completed[0]).includes('Test Patient'));
    assert.ok(!JSON.stringify(completed[0]).includes(patient.keys.publicKeyB64), 'no key material in the audit entry');
  });

  test('dialect B: scope becomes the consented actions; the provider key is handed over when registered', async () => {
    const patient = uniquePatient('dialect-b');
    const result = await establish(patient, PROVIDER_WITH_KEY, { dialect: 'B' });
    assert.equal(result.status, 'new');
    assert.equal(result.providerPublicKey, PROVIDER_KEY);
    assert.equal(result.attested.provider_public_key, PROVIDER_KEY);
    const row = await t.neuron.storage.db
      .selectFrom('relationships')
      .selectAll()
      .where('id', '=', result.relationshipId)
      .executeTakeFirstOrThrow();
    assert.equal(row.token_dialect, 'B');
    assert.deepEqual(JSON.parse(row.consented_actions), ['office_visit', 'lab_results']);
  });

  test('the same patient key again is `existing`: same id, no duplicate, no second notice', async () => {
    const patient = uniquePatient('again');
    const first = await establish(patient);
    const second = await establish(patient);
    assert.equal(second.status, 'existing');
    assert.equal(second.relationshipId, first.relationshipId);
    assert.deepEqual(await writtenFor(t.neuron, patient.agentId), { relationships: 1, patients: 1, outbox: 1 });
    const row = await t.neuron.storage.db
      .selectFrom('relationships')
      .selectAll()
      .where('id', '=', first.relationshipId)
      .executeTakeFirstOrThrow();
    assert.ok(row.last_handshake_at >= row.established_at);
  });

  test('concurrent handshakes of one patient with one provider: exactly one `new`, one row', async () => {
    const patient = uniquePatient('race');
    const results = await Promise.all(Array.from({ length: 8 }, () => establish(patient)));
    assert.equal(results.filter((r) => r.status === 'new').length, 1);
    assert.equal(results.filter((r) => r.status === 'existing').length, 7);
    assert.equal(new Set(results.map((r) => r.relationshipId)).size, 1);
    assert.deepEqual(await writtenFor(t.neuron, patient.agentId), { relationships: 1, patients: 1, outbox: 1 });
  });

  test('a terminated relationship is never revived: the next handshake makes a new one', async () => {
    const patient = uniquePatient('terminated');
    const first = await establish(patient);
    await setStatus(t.neuron.storage.db, first.relationshipId, 'terminated', 'test', isoNow());
    const second = await establish(patient);
    assert.equal(second.status, 'new');
    assert.notEqual(second.relationshipId, first.relationshipId);
    const rows = await t.neuron.storage.db
      .selectFrom('relationships')
      .select(['id', 'status'])
      .where('patient_agent_id', '=', patient.agentId)
      .execute();
    assert.deepEqual(rows.map((r) => r.status).sort(), ['active', 'terminated']);
  });

  test('a webhook subscriber hears of a new relationship without demographics', async () => {
    await t.neuron.storage.db
      .insertInto('webhook_subscriptions')
      .values({
        id: 'sub-handshake-test',
        url: 'https://hooks.example/neuron',
        events: JSON.stringify(['relationship.established']),
        secret: 'x'.repeat(32),
        label: 'test',
        created_by: 'test',
        created_at: isoNow(),
        active: 1,
      })
      .execute();
    try {
      const patient = uniquePatient('webhook');
      const result = await establish(patient, PROVIDER, { profile: { display_name: 'Webhook Patient' } });
      const hooks = await t.neuron.storage.db
        .selectFrom('outbox')
        .selectAll()
        .where('kind', '=', 'webhook')
        .where('target', '=', 'sub-handshake-test')
        .execute();
      const mine = hooks.filter((h) => h.body.includes(result.relationshipId));
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.event_type, 'relationship.established');
      assert.ok(!mine[0]!.body.includes('Webhook Patient'));
      assert.ok(!mine[0]!.body.includes(patient.keys.publicKeyB64));
      await establish(patient);
      const after = await t.neuron.storage.db
        .selectFrom('outbox')
        .select('seq')
        .where('target', '=', 'sub-handshake-test')
        .where('body', 'like', `%${result.relationshipId}%`)
        .execute();
      assert.equal(after.length, 1, '`existing` publishes nothing');
    } finally {
      await t.neuron.storage.db.updateTable('webhook_subscriptions').set({ active: 0 }).where('id', '=', 'sub-handshake-test').execute();
    }
  });

  test('sessions are listed while in progress and dropped once closed', async () => {
    const patient = uniquePatient('sessions');
    const raw = await openRaw(t.handshakeUrl);
    await authenticate(raw, patient, PROVIDER);
    const listed = t.neuron.handshake.activeSessions().find((s) => s.patientAgentId === patient.agentId);
    assert.ok(listed);
    assert.equal(listed.providerAgentId, PROVIDER);
    assert.equal(listed.status, 'active');
    assert.ok(listed.startedAt instanceof Date);
    raw.ws.close();
    await raw.closed;
    await eventually(() => !t.neuron.handshake.activeSessions().some((s) => s.patientAgentId === patient.agentId));
    assert.deepEqual(await writtenFor(t.neuron, patient.agentId), { relationships: 0, patients: 0, outbox: 0 });
  });
});

describe('INVALID_MESSAGE', () => {
  test('not JSON', async () => {
    const patient = uniquePatient('not-json');
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) => raw.send('{"type":"handshake.auth",'));
  });

  test('wrong schema: a missing field, an unknown field, a non-canonical key encoding', async () => {
    const patient = uniquePatient('schema');
    const { patient_endpoint: _omit, ...missing } = authMessage(patient, PROVIDER);
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) => raw.send(missing));
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) => raw.send(authMessage(patient, PROVIDER, { extra_field: 1 })));
    // The key's last character carries bits that must be zero: same bytes, another spelling.
    const key = patient.keys.publicKeyB64;
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(key.at(-1)!);
    const skewed = key.slice(0, -1) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[last | 1];
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) => raw.send(authMessage(patient, PROVIDER, { patient_public_key: skewed })));
  });

  test('a binary frame', async () => {
    const patient = uniquePatient('binary');
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) => raw.ws.send(Buffer.from(JSON.stringify(authMessage(patient, PROVIDER)))));
  });

  test('a binary frame after the challenge', async () => {
    const patient = uniquePatient('binary-late');
    await refused(patient, 'INVALID_MESSAGE', undefined, async (raw) => {
      const challenge = await authenticate(raw, patient, PROVIDER);
      raw.ws.send(Buffer.from(JSON.stringify(challengeResponse(patient, challenge.nonce as string))));
    });
  });

  test('out of order: a challenge response first', async () => {
    const patient = uniquePatient('order-1');
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) =>
      raw.send({ type: 'handshake.challenge_response', signed_nonce: 'A'.repeat(86) }),
    );
  });

  test('out of order: a second message before the challenge arrived', async () => {
    const patient = uniquePatient('order-2');
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) => {
      raw.send(authMessage(patient, PROVIDER));
      raw.send(authMessage(patient, PROVIDER));
    });
  });

  test('out of order: handshake.auth again after the challenge', async () => {
    const patient = uniquePatient('order-3');
    await refused(patient, 'INVALID_MESSAGE', undefined, async (raw) => {
      await authenticate(raw, patient, PROVIDER);
      raw.send(authMessage(patient, PROVIDER));
    });
  });

  test('a replayed challenge response on the same connection writes nothing', async () => {
    const patient = uniquePatient('replay-same');
    await refused(patient, 'INVALID_MESSAGE', undefined, async (raw) => {
      const challenge = await authenticate(raw, patient, PROVIDER);
      const response = JSON.stringify(challengeResponse(patient, challenge.nonce as string));
      // Both frames in one write, so the second arrives while the first is being committed.
      raw.ws.send(response);
      raw.ws.send(response);
    });
  });

  test('after the error frame, further messages are ignored (one error frame only)', async () => {
    const patient = uniquePatient('after-end');
    await refused(patient, 'INVALID_MESSAGE', undefined, (raw) => {
      raw.send('nonsense');
      raw.send('more nonsense');
      raw.ws.send(Buffer.from([1, 2, 3]));
    });
  });
});

describe('CONSENT_FAILED, with each reason', () => {
  test('INVALID_SIGNATURE: the token was signed by another key', async () => {
    const patient = uniquePatient('sig');
    const other = generatePatientKeys();
    const token = createConsentToken({ patientAgentId: patient.agentId, providerNpi: PROVIDER, consentedActions: ['x'] }, other);
    await refused(patient, 'CONSENT_FAILED', 'INVALID_SIGNATURE', (raw) => raw.send(authMessage(patient, PROVIDER, {}, token)));
  });

  test('INVALID_SIGNATURE: the presented key is not a usable Ed25519 key (small-order point)', async () => {
    const patient = uniquePatient('small-order');
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    await refused(patient, 'CONSENT_FAILED', 'INVALID_SIGNATURE', (raw) =>
      raw.send(authMessage(patient, PROVIDER, { patient_public_key: encodeBase64url(identity) })),
    );
  });

  test('MALFORMED_TOKEN: a signed token without an expiry', async () => {
    const patient = uniquePatient('malformed');
    const token = signedPayload(patient, { patient_agent_id: patient.agentId, provider_npi: PROVIDER, consented_actions: ['x'] });
    await refused(patient, 'CONSENT_FAILED', 'MALFORMED_TOKEN', (raw) => raw.send(authMessage(patient, PROVIDER, {}, token)));
  });

  test('PATIENT_MISMATCH: the token names another patient agent', async () => {
    const patient = uniquePatient('mismatch');
    const token = createConsentToken(
      { patientAgentId: `${patient.agentId}-other`, providerNpi: PROVIDER, consentedActions: ['x'] },
      patient.keys,
    );
    await refused(patient, 'CONSENT_FAILED', 'PATIENT_MISMATCH', (raw) => raw.send(authMessage(patient, PROVIDER, {}, token)));
  });

  test('CONSENT_EXPIRED: expired beyond the clock skew', async () => {
    const patient = uniquePatient('expired');
    const now = Date.now();
    const token = createConsentToken(
      {
        patientAgentId: patient.agentId,
        providerNpi: PROVIDER,
        consentedActions: ['x'],
        issuedAt: new Date(now - 3_600_000),
        expiresAt: new Date(now - 120_000),
      },
      patient.keys,
    );
    await refused(patient, 'CONSENT_FAILED', 'CONSENT_EXPIRED', (raw) => raw.send(authMessage(patient, PROVIDER, {}, token)));
  });

  test('NOT_YET_VALID: issued in the future beyond the clock skew', async () => {
    const patient = uniquePatient('future');
    const now = Date.now();
    const token = createConsentToken(
      {
        patientAgentId: patient.agentId,
        providerNpi: PROVIDER,
        consentedActions: ['x'],
        issuedAt: new Date(now + 600_000),
        expiresAt: new Date(now + 3_600_000),
      },
      patient.keys,
    );
    await refused(patient, 'CONSENT_FAILED', 'NOT_YET_VALID', (raw) => raw.send(authMessage(patient, PROVIDER, {}, token)));
  });

  test('within the clock skew both ways the token is accepted', async () => {
    const now = Date.now();
    const windows = [
      { issuedAt: new Date(now + 30_000), expiresAt: new Date(now + 3_600_000) }, // issued 30 s ahead
      { issuedAt: new Date(now - 3_600_000), expiresAt: new Date(now - 30_000) }, // expired 30 s ago
    ];
    for (const window of windows) {
      const patient = uniquePatient('skew');
      const consentToken = createConsentToken(
        { patientAgentId: patient.agentId, providerNpi: PROVIDER, consentedActions: ['x'], ...window },
        patient.keys,
      );
      const result = await establishRelationship(t.handshakeUrl, {
        patientAgentId: patient.agentId,
        keys: patient.keys,
        endpoint: patient.endpoint,
        consentToken,
      });
      assert.equal(result.status, 'new');
    }
  });
});

describe('CHALLENGE_FAILED', () => {
  test('the nonce signed by another key', async () => {
    const patient = uniquePatient('challenge-key');
    const impostor = newPatient(patient.agentId);
    await refused(patient, 'CHALLENGE_FAILED', undefined, async (raw) => {
      const challenge = await authenticate(raw, patient, PROVIDER);
      raw.send(challengeResponse(impostor, challenge.nonce as string));
    });
  });

  test('the hex text signed instead of the 32 nonce bytes', async () => {
    const patient = uniquePatient('challenge-hex');
    await refused(patient, 'CHALLENGE_FAILED', undefined, async (raw) => {
      const challenge = await authenticate(raw, patient, PROVIDER);
      const overHex = encodeBase64url(sign(null, Buffer.from(challenge.nonce as string, 'utf8'), patient.keys.privateKey));
      raw.send({ type: 'handshake.challenge_response', signed_nonce: overHex });
    });
  });

  test('a challenge response replayed from an earlier connection', async () => {
    const patient = uniquePatient('replay-old');
    let captured = '';
    {
      const raw = await openRaw(t.handshakeUrl);
      const challenge = await authenticate(raw, patient, PROVIDER);
      captured = (challengeResponse(patient, challenge.nonce as string) as { signed_nonce: string }).signed_nonce;
      raw.ws.close();
      await raw.closed;
    }
    await refused(patient, 'CHALLENGE_FAILED', undefined, async (raw) => {
      await authenticate(raw, patient, PROVIDER);
      raw.send({ type: 'handshake.challenge_response', signed_nonce: captured });
    });
  });

  test("hijack: someone holding the patient's public key and token but not its private key", async () => {
    const victim = uniquePatient('victim');
    const established = await establish(victim);
    const token = createConsentToken(
      { patientAgentId: victim.agentId, providerNpi: PROVIDER, consentedActions: ['everything'] },
      victim.keys,
    );
    const attacker = generatePatientKeys();
    const before = await failureCount();
    const raw = await openRaw(t.handshakeUrl);
    raw.send(authMessage(victim, PROVIDER, { patient_endpoint: 'wss://attacker.example/agent' }, token));
    const challenge = await raw.next();
    assert.equal(challenge.type, 'handshake.challenge');
    raw.send({
      type: 'handshake.challenge_response',
      signed_nonce: encodeBase64url(sign(null, Buffer.from(challenge.nonce as string, 'hex'), attacker.privateKey)),
    });
    await expectError(raw, 'CHALLENGE_FAILED');
    await eventually(async () => (await failureCount()) > before);
    // The victim's records are untouched: no endpoint swap, no extra notice.
    assert.deepEqual(await writtenFor(t.neuron, victim.agentId), { relationships: 1, patients: 1, outbox: 1 });
    const entry = await t.neuron.storage.db
      .selectFrom('patients')
      .selectAll()
      .where('patient_agent_id', '=', victim.agentId)
      .executeTakeFirstOrThrow();
    assert.equal(entry.patient_endpoint, victim.endpoint);
    const row = await t.neuron.storage.db
      .selectFrom('relationships')
      .selectAll()
      .where('id', '=', established.relationshipId)
      .executeTakeFirstOrThrow();
    assert.equal(row.patient_endpoint, victim.endpoint);
  });
});

describe('IDENTITY_MISMATCH, BLOCKED, PROVIDER_NOT_FOUND', () => {
  test('IDENTITY_MISMATCH: the agent id is held under another key; the answer leaks no id', async () => {
    const patient = uniquePatient('identity');
    const first = await establish(patient);
    const impostor = newPatient(patient.agentId);
    const before = await failureCount();
    const raw = await openRaw(t.handshakeUrl);
    const challenge = await authenticate(raw, impostor, PROVIDER);
    raw.send(challengeResponse(impostor, challenge.nonce as string));
    await expectError(raw, 'IDENTITY_MISMATCH');
    const frame = raw.frames.find((f) => f.type === 'handshake.error')!;
    assert.ok(!JSON.stringify(frame).includes(first.relationshipId));
    assert.ok(!JSON.stringify(frame).includes(patient.keys.publicKeyB64));
    await eventually(async () => (await failureCount()) > before);
    assert.deepEqual((await auditEntries(t.neuron, 'handshake.failed'))[before]!.details, { code: 'IDENTITY_MISMATCH' });
    assert.deepEqual(await writtenFor(t.neuron, patient.agentId), { relationships: 1, patients: 1, outbox: 1 });
    const entry = await t.neuron.storage.db
      .selectFrom('patients')
      .selectAll()
      .where('patient_agent_id', '=', patient.agentId)
      .executeTakeFirstOrThrow();
    assert.equal(entry.patient_public_key, patient.keys.publicKeyB64, 'the directory keeps the real key');
  });

  test('BLOCKED before any relationship', async () => {
    const patient = uniquePatient('blocked');
    await insertBlock(t.neuron.storage.db, { patientAgentId: patient.agentId, reason: 'test', blockedBy: 'test', createdAt: isoNow() });
    await refused(patient, 'BLOCKED', undefined, (raw) => raw.send(authMessage(patient, PROVIDER)));
  });

  test('BLOCKED even with an active relationship', async () => {
    const patient = uniquePatient('blocked-later');
    await establish(patient);
    await insertBlock(t.neuron.storage.db, { patientAgentId: patient.agentId, reason: 'test', blockedBy: 'test', createdAt: isoNow() });
    const before = await failureCount();
    const raw = await openRaw(t.handshakeUrl);
    raw.send(authMessage(patient, PROVIDER));
    await expectError(raw, 'BLOCKED');
    await eventually(async () => (await failureCount()) > before);
  });

  test('BLOCKED when the block lands while the patient answers the challenge', async () => {
    const patient = uniquePatient('blocked-mid');
    await refused(patient, 'BLOCKED', undefined, async (raw) => {
      const challenge = await authenticate(raw, patient, PROVIDER);
      await insertBlock(t.neuron.storage.db, { patientAgentId: patient.agentId, reason: 'test', blockedBy: 'test', createdAt: isoNow() });
      raw.send(challengeResponse(patient, challenge.nonce as string));
    });
  });

  test('BLOCKED for a suspended relationship, which is neither revived nor duplicated', async () => {
    const patient = uniquePatient('suspended-rel');
    const first = await establish(patient);
    await setStatus(t.neuron.storage.db, first.relationshipId, 'suspended', 'test', isoNow());
    const raw = await openRaw(t.handshakeUrl);
    const challenge = await authenticate(raw, patient, PROVIDER);
    raw.send(challengeResponse(patient, challenge.nonce as string));
    await expectError(raw, 'BLOCKED');
    const rows = await t.neuron.storage.db
      .selectFrom('relationships')
      .select('status')
      .where('patient_agent_id', '=', patient.agentId)
      .execute();
    assert.deepEqual(
      rows.map((r) => r.status),
      ['suspended'],
    );
  });

  for (const [label, npi] of [
    ['unknown', UNKNOWN],
    ['pending', PENDING],
    ['suspended', SUSPENDED],
  ] as const) {
    test(`PROVIDER_NOT_FOUND for a ${label} provider`, async () => {
      const patient = uniquePatient(`provider-${label}`);
      await refused(patient, 'PROVIDER_NOT_FOUND', undefined, (raw) => raw.send(authMessage(patient, npi)));
    });
  }

  test('a provider suspension or approval counts from the very next handshake', async () => {
    const npi = '1982743191';
    await insertProvider(t.neuron, { npi, status: 'pending' });
    const patient = uniquePatient('roster-change');
    await assert.rejects(establish(patient, npi), (e: HandshakeError) => e.code === 'PROVIDER_NOT_FOUND');
    await setProviderStatus(t.neuron, npi, 'active');
    assert.equal((await establish(patient, npi)).status, 'new');
    await setProviderStatus(t.neuron, npi, 'suspended');
    await assert.rejects(establish(patient, npi), (e: HandshakeError) => e.code === 'PROVIDER_NOT_FOUND' && e.closeCode === 4004);
  });

  test('PROVIDER_NOT_FOUND when the provider is suspended while the patient answers the challenge', async () => {
    const npi = '1245319599';
    await insertProvider(t.neuron, { npi });
    const patient = uniquePatient('provider-mid');
    await refused(patient, 'PROVIDER_NOT_FOUND', undefined, async (raw) => {
      const challenge = await authenticate(raw, patient, npi);
      await setProviderStatus(t.neuron, npi, 'suspended');
      raw.send(challengeResponse(patient, challenge.nonce as string));
    });
  });
});

describe('message size', () => {
  test('a message over handshake.max_message_bytes closes with 1009', async () => {
    const patient = uniquePatient('large');
    const before = await failureCount();
    const raw = await openRaw(t.handshakeUrl);
    raw.send(authMessage(patient, PROVIDER, { padding: 'x'.repeat(5_000) }));
    const closed = await raw.closed;
    assert.equal(closed.code, 1009);
    assert.equal(raw.frames.length, 0);
    await expectOnlyFailureAudit(patient.agentId, before, 'MESSAGE_TOO_LARGE');
  });

  test('the client library reports it as MESSAGE_TOO_LARGE', async () => {
    const patient = uniquePatient('large-client');
    await assert.rejects(
      establish(patient, PROVIDER, {
        profile: {
          display_name: 'y'.repeat(150),
          date_of_birth: '2000-01-01',
          preferred_language: 'en',
          extra: 'z'.repeat(4_500),
        } as Record<string, string>,
      }),
      (e: HandshakeError) => e.code === 'MESSAGE_TOO_LARGE' && e.closeCode === 1009,
    );
  });
});

describe('SERVER_ERROR', () => {
  test('an unexpected failure is SERVER_ERROR with close 1011; the detail goes to the log only and nothing is written', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const s = await startNeuronWithProvider(
      { npi: PROVIDER },
      { neuronOptions: { logger: createLogger({ level: 'error', pretty: 'never', destination }) } },
    );
    try {
      // Break the outbox table so the completing transaction fails half way, after the
      // relationship and the directory entry were written in it.
      await sql`ALTER TABLE outbox RENAME TO outbox_moved`.execute(s.neuron.storage.db);
      const patient = uniquePatient('server-error');
      const raw = await openRaw(s.handshakeUrl);
      const challenge = await authenticate(raw, patient, PROVIDER);
      raw.send(challengeResponse(patient, challenge.nonce as string));
      const frame = await raw.next();
      assert.equal(frame.type, 'handshake.error');
      assert.equal(frame.code, 'SERVER_ERROR');
      assert.ok(!JSON.stringify(frame).includes('outbox'), 'no internal detail in the frame');
      assert.equal((await raw.closed).code, 1011);
      await eventually(() => lines.some((l) => l.includes('handshake failed unexpectedly')));
      assert.ok(
        lines.some((l) => l.includes('no such table')),
        'the cause is logged',
      );
      await sql`ALTER TABLE outbox_moved RENAME TO outbox`.execute(s.neuron.storage.db);
      assert.deepEqual(await writtenFor(s.neuron, patient.agentId), { relationships: 0, patients: 0, outbox: 0 });
      await eventually(async () => (await auditEntries(s.neuron, 'handshake.failed')).some((e) => e.details.code === 'SERVER_ERROR'));
    } finally {
      await s.stop();
    }
  });
});

describe('handshake.failed audit entries', () => {
  test('failures of one turn are written in transactions of handshake.failure_audit_batch_max, every entry in order, the chain intact', async () => {
    const service = new HandshakeService({
      storage: t.neuron.storage,
      audit: t.neuron.audit,
      organizationKey: t.neuron.organizationKey,
      organizationNpi: t.neuron.config.organization.npi,
      pullNoticeHoldMs: t.neuron.config.outbox.backoff_max_ms,
      failureAuditBatchMax: 2,
    });
    // Five in one turn: three transactions of 2, 2 and 1, each entry its own, in the order reported.
    const reasons = [1, 2, 3, 4, 5].map((n) => `audit-batch-${process.pid}-${n}`);
    await Promise.all(reasons.map((reason) => service.recordFailure('CHALLENGE_FAILED', reason)));
    const written = (await auditEntries(t.neuron, 'handshake.failed')).filter((entry) => reasons.includes(entry.details.reason as string));
    assert.deepEqual(
      written.map((entry) => entry.details),
      reasons.map((reason) => ({ code: 'CHALLENGE_FAILED', reason })),
    );
    assert.equal((await t.neuron.audit.verify()).ok, true);
  });
});
