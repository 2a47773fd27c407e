/**
 * GET /v1/relationships/{id}/attestation: a fresh attestation of an active relationship that
 * verifies under the organization's public key alone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { verifyAttestation } from 'neuron-careagent-client/protocol';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';

describe('GET /v1/relationships/{id}/attestation', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('signs the relationship as recorded, verifiable with the key GET /v1/organization publishes', async () => {
    const relationship = await insertRelationship(t.neuron);
    const response = await t.request('GET', `/v1/relationships/${relationship.id}/attestation`, { key: t.keys.read });
    assert.equal(response.status, 200, response.text);
    const organization = await t.request('GET', '/v1/organization', { key: t.keys.read });
    const publicKey = organization.body.public_key as string;
    assert.equal(response.body.neuron_public_key, publicKey);
    const attested = verifyAttestation(response.body.attestation, publicKey, {
      relationship_id: relationship.id,
      patient_agent_id: relationship.patientAgentId,
      provider_npi: relationship.providerNpi,
      organization_npi: '1245319599',
    });
    assert.deepEqual(attested.consented_actions, relationship.consentedActions);
    assert.equal(attested.issued_at, response.body.issued_at);
  });

  it('refuses suspended (409), terminated (410) and unknown (404) relationships', async () => {
    const suspended = await insertRelationship(t.neuron, { status: 'suspended' });
    assertProblem(await t.request('GET', `/v1/relationships/${suspended.id}/attestation`, { key: t.keys.read }), 409, 'CONFLICT');
    const terminated = await insertRelationship(t.neuron, { status: 'terminated' });
    assertProblem(
      await t.request('GET', `/v1/relationships/${terminated.id}/attestation`, { key: t.keys.read }),
      410,
      'RELATIONSHIP_TERMINATED',
    );
    assertProblem(
      await t.request('GET', '/v1/relationships/00000000-0000-4000-8000-000000000000/attestation', { key: t.keys.read }),
      404,
      'NOT_FOUND',
    );
    assertProblem(await t.request('GET', '/v1/relationships/00000000-0000-4000-8000-000000000000/attestation'), 401, 'UNAUTHENTICATED');
  });
});
