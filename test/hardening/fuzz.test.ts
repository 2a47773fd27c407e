/**
 * Hostile handshake input through real connections: a few hundred seeded cases from
 * test/hardening/fuzz.ts (every family at least once), each answered with one coded
 * handshake.error and its close code (or the WebSocket layer's own close for frames it refuses),
 * the Neuron still serving afterwards, and nothing written but one `handshake.failed` audit entry
 * per case. `npm run stress` drives 10 000+ of the same cases.
 *
 * FUZZ_SEED=<n> runs another seed; a failure prints the seed that reproduces it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { createConsentToken, establishRelationship } from 'neuron-careagent-client';
import { insertProvider, startTestNeuron, type TestNeuron } from '../helpers/neuron.ts';
import { eventually } from '../helpers/records.ts';
import { newPatient } from '../helpers/raw-handshake.ts';
import {
  FAMILY_NAMES,
  MARKER,
  Prng,
  ROW_COUNT_SQL,
  createKit,
  describeFailures,
  generateCases,
  judge,
  runCases,
  seedFromEnv,
  tallyAudit,
  type FuzzCase,
  type RowCounts,
} from './fuzz.ts';

const PROVIDER = '1679576722';
/** Fixed so the suite is deterministic; FUZZ_SEED overrides it. */
const DEFAULT_SEED = 0x2026_0a11;
const CASES = 400;

let t: TestNeuron;

async function counts(): Promise<RowCounts> {
  const { rows } = await sql<RowCounts>`${sql.raw(ROW_COUNT_SQL)}`.execute(t.neuron.storage.db);
  return rows[0]!;
}

async function lastAuditSeq(): Promise<number> {
  const row = await t.neuron.storage.db.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return row?.seq ?? 0;
}

before(async () => {
  // A raised ceiling so the run is not paced by admission; the default message limit (64 KiB).
  t = await startTestNeuron({ config: { handshake: { max_concurrent_handshakes: 64 } } });
  await insertProvider(t.neuron, { npi: PROVIDER });
});
after(async () => t.stop());

describe('the generator', () => {
  test('is reproducible from its seed and covers every family in a small run', () => {
    // One signing time for both: the kits' valid tokens carry it, and the clock may pass a second
    // boundary between two createKit calls (it did, once in a full run).
    const issuedAt = new Date();
    const kit = createKit(7, { providerNpi: PROVIDER, maxMessageBytes: 65_536, issuedAt });
    const again = createKit(7, { providerNpi: PROVIDER, maxMessageBytes: 65_536, issuedAt });
    assert.deepEqual(
      kit.patients.map((p) => p.keys.publicKeyB64),
      again.patients.map((p) => p.keys.publicKeyB64),
    );
    const first = generateCases(kit, 120);
    const second = generateCases(again, 120);
    assert.deepEqual(
      first.map((c) => [c.family, c.patient, c.stage]),
      second.map((c) => [c.family, c.patient, c.stage]),
    );
    // Frames that do not depend on signing time (tokens carry the current time) are identical.
    const stable = first.filter((c) => c.stage === 'auth' && c.transport === 'ws' && /^(text|json|type|binary)/.test(c.family));
    assert.ok(stable.length > 5);
    for (const c of stable) assert.deepEqual(c.frames(null), second[c.index]!.frames(null), c.family);
    assert.deepEqual(new Set(first.slice(0, FAMILY_NAMES.length).map((c) => c.family)), new Set(FAMILY_NAMES));
    const other = generateCases(createKit(8, { providerNpi: PROVIDER, maxMessageBytes: 65_536 }), 120);
    assert.notDeepEqual(
      first.slice(FAMILY_NAMES.length).map((c) => c.family),
      other.slice(FAMILY_NAMES.length).map((c) => c.family),
    );
    const prng = new Prng(1);
    assert.deepEqual(
      [prng.u32(), prng.u32()],
      (() => {
        const p = new Prng(1);
        return [p.u32(), p.u32()];
      })(),
    );
  });

  test('the verdict refuses what a hardened Neuron must not do', () => {
    const c: FuzzCase = {
      index: 0,
      family: 'x',
      transport: 'ws',
      stage: 'auth',
      patient: 0,
      frames: () => [],
      expect: { error: ['INVALID_MESSAGE'] },
    };
    const error = { type: 'handshake.error', code: 'INVALID_MESSAGE', message: 'message is not valid JSON' };
    assert.equal(judge(c, { frames: [error], closeCode: 4002, failure: null }).ok, true);
    assert.equal(judge(c, { frames: [error], closeCode: 1000, failure: null }).ok, false, 'wrong close code');
    assert.equal(judge(c, { frames: [error, error], closeCode: 4002, failure: null }).ok, false, 'two error frames');
    assert.equal(judge(c, { frames: [], closeCode: 4002, failure: null }).ok, false, 'no error frame');
    assert.equal(judge(c, { frames: [{ type: 'handshake.challenge' }, error], closeCode: 4002, failure: null }).ok, false, 'a challenge');
    assert.equal(judge(c, { frames: [{ ...error, message: `bad ${MARKER}` }], closeCode: 4002, failure: null }).ok, false, 'echo');
    assert.equal(judge(c, { frames: [{ ...error, code: 'CONSENT_FAILED' }], closeCode: 4003, failure: null }).ok, false, 'other code');
    assert.equal(judge(c, { frames: [error], closeCode: 4002, failure: 'timeout' }).ok, false, 'timeout');
    const tooLarge: FuzzCase = { ...c, expect: { close: [1009] } };
    assert.equal(judge(tooLarge, { frames: [], closeCode: 1009, failure: null }).auditedAs, 'MESSAGE_TOO_LARGE');
    assert.equal(judge(tooLarge, { frames: [], closeCode: 1006, failure: null }).ok, false);
    assert.equal(judge(tooLarge, { frames: [{ type: 'handshake.complete' }], closeCode: 1009, failure: null }).ok, false);
  });
});

describe('hostile handshakes through real connections', () => {
  test(`${CASES} seeded cases: one coded error and a close each, nothing written but the failure audit`, async () => {
    const seed = seedFromEnv(DEFAULT_SEED);
    const kit = createKit(seed, { providerNpi: PROVIDER, maxMessageBytes: t.neuron.config.handshake.max_message_bytes });
    const cases = generateCases(kit, CASES);
    const before = await counts();
    const auditSeq = await lastAuditSeq();

    const summary = await runCases(t.handshakeUrl, kit, cases, { concurrency: 16, caseTimeoutMs: 20_000 });
    assert.equal(summary.failed.length, 0, describeFailures(summary));
    assert.equal(summary.passed, CASES);

    // One handshake.failed entry per case, each with the code the client saw.
    const expectedFailures = Object.values(summary.expectedAudit).reduce((a, b) => a + b, 0);
    assert.equal(expectedFailures, CASES, `every case ends in an audited failure (seed ${seed})`);
    await eventually(async () => (await counts()).auditFailed - before.auditFailed >= CASES, 15_000, 'the failure audit entries');
    const rows = await t.neuron.storage.db
      .selectFrom('audit_log')
      .select(['event_type as type', 'details'])
      .where('seq', '>', auditSeq)
      .orderBy('seq')
      .execute();
    const { types, failedCodes } = tallyAudit(rows);
    assert.deepEqual(types, { 'handshake.failed': CASES }, `only failure events were audited (seed ${seed})`);
    assert.deepEqual(failedCodes, summary.expectedAudit, `audited codes match what the clients saw (seed ${seed})`);
    for (const row of rows) {
      const details = JSON.parse(row.details) as Record<string, unknown>;
      assert.ok(
        Object.keys(details).every((k) => k === 'code' || k === 'reason'),
        `failure audit details hold only code and reason: ${row.details}`,
      );
      assert.ok(!row.details.includes(MARKER));
    }

    const after = await counts();
    assert.equal(after.relationships, before.relationships, 'no relationship written');
    assert.equal(after.patients, before.patients, 'no directory entry written');
    assert.equal(after.outbox, before.outbox, 'no outbox notice written');
    assert.equal(after.audit - before.audit, CASES);

    // Every slot and session was given back, and the Neuron still serves patients and HTTP.
    await eventually(() => t.neuron.handshake.activeSessions().length === 0, 10_000, 'sessions closed');
    assert.deepEqual(t.neuron.handshake.load(), { active: 0, queued: 0 });
    assert.equal((await fetch(`${t.url}/health/live`)).status, 200);
    const patient = newPatient(`after-fuzz-${seed}`);
    const consentToken = createConsentToken(
      { patientAgentId: patient.agentId, providerNpi: PROVIDER, consentedActions: ['office_visit'] },
      patient.keys,
    );
    const result = await establishRelationship(t.handshakeUrl, {
      patientAgentId: patient.agentId,
      keys: patient.keys,
      endpoint: patient.endpoint,
      consentToken,
    });
    assert.equal(result.status, 'new');
  });
});
