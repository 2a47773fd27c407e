/**
 * A small flood: more patients at once than the ceiling and the queue hold. The overflow is
 * refused at once with 503, Retry-After and a problem document, before any WebSocket opens and
 * without writing anything; everyone admitted completes; nobody hangs; refused patients that
 * come back after Retry-After complete too. The stress run (`npm run stress`) floods the default
 * limits with 20 000 upgrades and measures memory and the REST API's latency meanwhile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { HandshakeError, type RelationshipResult } from 'neuron-careagent-client';
import { startNeuronWithProvider, type TestNeuron } from '../helpers/neuron.ts';
import { establishAs } from '../helpers/providers.ts';
import { eventually, writtenFor } from '../helpers/records.ts';
import { newPatient, openRaw, type Patient } from '../helpers/raw-handshake.ts';

const PROVIDER = '1679576722';
const CEILING = 2;
const MAX_QUEUED = 20;
const RETRY_AFTER_SECONDS = 1;
const PATIENTS = 60;

let t: TestNeuron;

before(async () => {
  t = await startNeuronWithProvider(
    { npi: PROVIDER },
    { config: { handshake: { max_concurrent_handshakes: CEILING, max_queued: MAX_QUEUED, retry_after_seconds: RETRY_AFTER_SECONDS } } },
  );
});
after(async () => t.stop());

function establish(patient: Patient): Promise<RelationshipResult> {
  return establishAs(t.handshakeUrl, patient, PROVIDER, { timeoutMs: 60_000 });
}

test(`${PATIENTS} patients at ceiling ${CEILING} with room for ${MAX_QUEUED} in the queue: the overflow gets 503 + Retry-After, the rest complete`, async () => {
  // Two silent clients hold both slots, so the queue fills deterministically.
  const holders = await Promise.all([openRaw(t.handshakeUrl), openRaw(t.handshakeUrl)]);
  await eventually(() => t.neuron.handshake.load().active === CEILING, 5_000, 'both slots held');

  const patients = Array.from({ length: PATIENTS }, (_, i) => newPatient(`flood-${process.pid}-${i}`));
  const outcomes = patients.map((patient) =>
    establish(patient).then(
      (result) => ({ patient, result, error: null }),
      (error: unknown) => ({ patient, result: null, error: error as HandshakeError }),
    ),
  );
  const refusals = PATIENTS - MAX_QUEUED;
  // The refusals come back at once, while the queue is still full and the slots still held.
  await eventually(() => t.neuron.handshake.load().queued === MAX_QUEUED, 10_000, 'the queue full');
  const settledEarly: Array<Awaited<(typeof outcomes)[number]>> = [];
  for (const outcome of outcomes) void outcome.then((o) => settledEarly.push(o));
  await eventually(() => settledEarly.length === refusals, 10_000, `${refusals} refusals`);
  assert.equal(t.neuron.handshake.load().queued, MAX_QUEUED);
  for (const refused of settledEarly) {
    assert.ok(refused.error instanceof HandshakeError, 'only refusals settle while the slots are held');
    assert.equal(refused.error.status, 503);
    assert.equal(refused.error.code, 'HANDSHAKE_QUEUE_FULL');
    assert.equal(refused.error.retryAfter, RETRY_AFTER_SECONDS);
    assert.equal(refused.error.closeCode, null, 'no WebSocket was opened');
    assert.deepEqual(await writtenFor(t.neuron, refused.patient.agentId), { relationships: 0, patients: 0, outbox: 0 });
  }

  // Free the slots: every queued patient is admitted in turn and completes.
  for (const holder of holders) holder.ws.close();
  const all = await Promise.all(outcomes);
  const admitted = all.filter((o) => o.result !== null);
  assert.equal(
    admitted.length,
    MAX_QUEUED,
    JSON.stringify(all.filter((o) => o.error && o.error.code !== 'HANDSHAKE_QUEUE_FULL').map((o) => o.error!.code)),
  );
  assert.ok(admitted.every((o) => o.result!.status === 'new'));

  // The refused come back after Retry-After, a few at a time as a polite client would, and complete.
  await sleep(RETRY_AFTER_SECONDS * 1_000);
  const refused = all.filter((o) => o.error !== null).map((o) => o.patient);
  const retried: RelationshipResult[] = [];
  for (let i = 0; i < refused.length; i += MAX_QUEUED)
    retried.push(...(await Promise.all(refused.slice(i, i + MAX_QUEUED).map(establish))));
  assert.equal(retried.length, refusals);
  assert.ok(retried.every((r) => r.status === 'new'));

  const relationships = await t.neuron.storage.db.selectFrom('relationships').select('id').execute();
  assert.equal(relationships.length, PATIENTS);
  assert.match(
    await t.neuron.metrics.getSingleMetricAsString('neuron_handshakes_total'),
    new RegExp(`outcome="HANDSHAKE_QUEUE_FULL"[^\\n]* ${refusals}\\b`),
  );
  await eventually(() => t.neuron.handshake.activeSessions().length === 0, 10_000, 'sessions closed');
  assert.deepEqual(t.neuron.handshake.load(), { active: 0, queued: 0 });
});
