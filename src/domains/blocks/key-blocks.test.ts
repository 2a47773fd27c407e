/**
 * Issue 13, "blocks hold by key too": a block of a patient agent id also holds against the public
 * keys that agent presented, so the same key cannot come back under a new agent id. Real
 * handshakes through the client library against a real Neuron.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConsentToken, establishRelationship, generatePatientKeys, HandshakeError, type PatientKeys } from 'neuron-careagent-client';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { api, createApiKey } from '../../../test/helpers/providers.ts';

const PROVIDER = '1679576722';

let t: TestNeuron;
let admin: string;

before(async () => {
  t = await startTestNeuron({
    config: { providers: [{ npi: PROVIDER, name: 'Dr. Block', provider_endpoint: 'wss://provider.example/agent' }] },
  });
  admin = await createApiKey(t.neuron, ['admin'], 'front-desk');
});
after(async () => t.stop());

function handshake(patientAgentId: string, keys: PatientKeys): ReturnType<typeof establishRelationship> {
  return establishRelationship(t.handshakeUrl, {
    patientAgentId,
    keys,
    endpoint: `wss://${patientAgentId.replace(/[^a-z0-9-]/g, '-')}.patients.example/agent`,
    consentToken: createConsentToken({ patientAgentId, providerNpi: PROVIDER, consentedActions: ['office_visit'] }, keys),
  });
}

async function refusedWith(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    if (error instanceof HandshakeError) return error.code;
    throw error;
  }
  return 'accepted';
}

describe('blocks by key', () => {
  test("the blocked agent's key is refused under a new agent id; another key is not; unblocking lifts both", async () => {
    const keys = generatePatientKeys();
    const other = generatePatientKeys();
    await handshake('did:example:agent-a', keys);

    const blocked = await api(t.url, 'POST', '/v1/blocks', {
      token: admin,
      body: { patient_agent_id: 'did:example:agent-a', reason: 'abusive messages' },
    });
    assert.equal(blocked.status, 201);
    assert.deepEqual(blocked.body.blocked_public_keys, [keys.publicKeyB64]);

    assert.equal(await refusedWith(handshake('did:example:agent-a', keys)), 'BLOCKED');
    assert.equal(await refusedWith(handshake('did:example:agent-a-renamed', keys)), 'BLOCKED', 'same key, new agent id');
    assert.equal(await refusedWith(handshake('did:example:agent-b', other)), 'accepted', 'a different key is not blocked');

    const audit = await t.neuron.storage.db.selectFrom('audit_log').select('details').where('event_type', '=', 'patient.blocked').execute();
    assert.ok(
      audit.some((entry) => entry.details.includes(keys.publicKeyB64)),
      'the audit entry names the blocked keys',
    );

    assert.equal((await api(t.url, 'DELETE', `/v1/blocks/${encodeURIComponent('did:example:agent-a')}`, { token: admin })).status, 204);
    assert.equal(await refusedWith(handshake('did:example:agent-a-renamed', keys)), 'accepted');
    // agent-a itself stays refused: its relationship, suspended by the block, stays suspended until resumed (src/domains/blocks/service.ts).
    assert.equal((await t.neuron.storage.db.selectFrom('blocked_keys').selectAll().execute()).length, 0);
  });

  test('an agent id never seen blocks no key', async () => {
    const blocked = await api(t.url, 'POST', '/v1/blocks', {
      token: admin,
      body: { patient_agent_id: 'did:example:stranger', reason: 'pre-emptive' },
    });
    assert.equal(blocked.status, 201);
    assert.deepEqual(blocked.body.blocked_public_keys, []);
    assert.equal(await refusedWith(handshake('did:example:stranger', generatePatientKeys())), 'BLOCKED');
  });
});
