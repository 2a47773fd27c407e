/**
 * Each handshake that ends is one info line: session id, outcome, duration, and the error code
 * when it failed; nothing about the patient (agent id, endpoint, key) or the consent token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { createConsentToken, establishRelationship } from 'neuron-careagent-client';
import { startNeuronWithProvider, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { newPatient } from '../../../test/helpers/raw-handshake.ts';

const PROVIDER = '1679576722';
/** Not on the roster: the handshake for it fails with a catalogue code. */
const UNKNOWN_PROVIDER = '1376841239';
const UUID = /^[0-9a-f-]{36}$/;

let t: TestNeuron;
const logLines: Array<Record<string, unknown>> = [];

before(async () => {
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
  });
  t = await startNeuronWithProvider({ npi: PROVIDER }, { neuronOptions: { logger: pino({ level: 'info' }, stream) } });
});
after(async () => t.stop());

test('a completed and a failed handshake each log one info line with outcome, duration and session id, and no personal data', async () => {
  const patient = newPatient('patient-log-synthetic-1');
  const handshake = (npi: string) =>
    establishRelationship(t.handshakeUrl, {
      patientAgentId: patient.agentId,
      keys: patient.keys,
      endpoint: patient.endpoint,
      consentToken: createConsentToken(
        { patientAgentId: patient.agentId, providerNpi: npi, consentedActions: ['office_visit'] },
        patient.keys,
      ),
      timeoutMs: 30_000,
    });
  await handshake(PROVIDER);
  await assert.rejects(handshake(UNKNOWN_PROVIDER));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const ended = logLines.filter((line) => line['msg'] === 'handshake ended');
  assert.equal(ended.length, 2);
  const [completed, failed] = ended as [Record<string, unknown>, Record<string, unknown>];
  assert.equal(completed['level'], 30);
  assert.equal(completed['outcome'], 'new');
  assert.match(String(completed['session_id']), UUID);
  assert.equal(typeof completed['duration_ms'], 'number');
  assert.equal(completed['error_code'], undefined);
  assert.equal(failed['level'], 30);
  assert.equal(failed['error_code'], failed['outcome']);
  assert.match(String(failed['error_code']), /^[A-Z_]+$/);
  assert.notEqual(failed['session_id'], completed['session_id']);
  const text = JSON.stringify(ended);
  for (const personal of [patient.agentId, patient.endpoint, patient.keys.publicKeyB64])
    assert.ok(!text.includes(personal), `logged ${personal}`);
});
