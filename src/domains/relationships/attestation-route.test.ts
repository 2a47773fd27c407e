/**
 * GET /v1/relationships/{id}/attestation: a fresh attestation of an active relationship that
 * verifies under the organization's public key alone, with the audit receipt of the handshake
 * that established it (SQLite, and PostgreSQL when NEURON_TEST_POSTGRES_URL is set: the receipt's
 * lookup is written per dialect).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { verifyAttestationWithReceipt, verifyReceiptConsistency, type Receipt, type RelationshipResult } from 'neuron-careagent-client';
import { verifyAttestation } from 'neuron-careagent-client/protocol';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';
import { insertProvider } from '../../../test/helpers/neuron.ts';
import { newPatient, type Patient } from '../../../test/helpers/raw-handshake.ts';
import { establishAs } from '../../../test/helpers/providers.ts';
import { testDatabases, type TestDatabase } from '../../../test/helpers/databases.ts';
import { entryHash } from '../audit/index.ts';

const PROVIDER = '1679576722';
let counter = 0;

function connect(t: ApiTestNeuron, patient: Patient): Promise<RelationshipResult> {
  return establishAs(`${t.url.replace(/^http/, 'ws')}/ws/handshake`, patient, PROVIDER, { requireReceipt: true });
}

for (const backend of testDatabases()) {
  describe(`GET /v1/relationships/{id}/attestation (${backend.name})`, () => {
    let t: ApiTestNeuron;
    let database: TestDatabase | undefined;
    before(async () => {
      if (backend.name === 'postgres') database = await backend.open();
      t = await startApiNeuron(database ? { config: { storage: { url: database.options.url } } } : {});
      await insertProvider(t.neuron, { npi: PROVIDER });
    });
    after(async () => {
      await t?.checkConformance();
      await t?.stop();
      await database?.close();
    });

    const organizationKey = async (): Promise<string> => (await t.request('GET', '/v1/organization', { key: t.keys.read })).body.public_key;

    it('signs the relationship as recorded, verifiable with the key GET /v1/organization publishes', async () => {
      const relationship = await insertRelationship(t.neuron);
      const response = await t.request('GET', `/v1/relationships/${relationship.id}/attestation`, { key: t.keys.read });
      assert.equal(response.status, 200, response.text);
      const publicKey = await organizationKey();
      assert.equal(response.body.neuron_public_key, publicKey);
      const attested = verifyAttestation(response.body.attestation, publicKey, {
        relationship_id: relationship.id,
        patient_agent_id: relationship.patientAgentId,
        provider_npi: relationship.providerNpi,
        organization_npi: '1245319599',
      });
      assert.deepEqual(attested.consented_actions, relationship.consentedActions);
      assert.equal(attested.issued_at, response.body.issued_at);
      // Written straight to the table, not by a handshake: the audit log has nothing to prove.
      assert.equal(response.body.receipt, null);
      assert.equal(response.body.receipt_absent_reason, 'NO_AUDIT_ENTRY');
    });

    it('answers the receipt of the handshake that established the relationship, verifiable with the attestation and consistent with later tree heads', async () => {
      const patient = newPatient(`attested-${process.pid}-${++counter}`);
      const established = await connect(t, patient);
      // A second handshake of the same patient writes another handshake.completed entry for the
      // same relationship, and another patient's grows the tree: the receipt stays the first one's.
      const again = await connect(t, patient);
      assert.equal(again.relationshipId, established.relationshipId);
      await connect(t, newPatient(`attested-other-${process.pid}-${++counter}`));

      const response = await t.request('GET', `/v1/relationships/${established.relationshipId}/attestation`, { key: t.keys.read });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.body.receipt_absent_reason, null);
      const receipt = response.body.receipt as Receipt;
      const publicKey = await organizationKey();
      const verified = verifyAttestationWithReceipt({ ...response.body.attestation, receipt }, publicKey, {
        relationship_id: established.relationshipId,
        patient_agent_id: patient.agentId,
        provider_npi: PROVIDER,
      });
      assert.equal(verified.entry.details.status, 'new');
      assert.equal(receipt.entry, established.receipt!.entry, 'the establishing entry, exactly as the handshake gave it');
      assert.equal(receipt.leaf_index, established.receipt!.leaf_index);
      // Under the latest head, which extends the one the patient got in the handshake.
      assert.ok(receipt.tree_head.tree_size > established.receipt!.tree_head.tree_size);
      const sinceHandshake = await t.request(
        'GET',
        `/v1/audit/proofs/consistency?first=${established.receipt!.tree_head.tree_size}&second=${receipt.tree_head.tree_size}`,
      );
      verifyReceiptConsistency(established.receipt!, receipt.tree_head, sinceHandshake.body.proof, publicKey);

      // Later, after more audited changes, the served receipt is consistent with the newer head.
      const suspended = await t.request('POST', `/v1/relationships/${established.relationshipId}/suspend`, {
        key: t.keys.write,
        body: { reason: 'synthetic pause' },
      });
      assert.equal(suspended.status, 200, suspended.text);
      const later = (await t.request('GET', '/v1/audit/tree-head')).body;
      assert.ok(later.tree_size > receipt.tree_head.tree_size);
      const proof = await t.request('GET', `/v1/audit/proofs/consistency?first=${receipt.tree_head.tree_size}&second=${later.tree_size}`);
      assert.equal(verifyReceiptConsistency(receipt, later, proof.body.proof, publicKey).tree_size, later.tree_size);
    });

    it('says NOT_YET_SEALED while no signed tree head covers the entry yet', async () => {
      const relationship = await insertRelationship(t.neuron);
      // An entry appended past the latest head without sealing, as a log kept before tree heads
      // existed holds until its next audited change: a valid link of the chain, in no tree yet.
      const db = t.neuron.storage.db;
      const head = await db.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      const fields = {
        seq: head.seq + 1,
        occurred_at: new Date().toISOString(),
        event_type: 'handshake.completed',
        actor: `patient:${relationship.patientAgentId}`,
        details: JSON.stringify({ provider_npi: PROVIDER, relationship_id: relationship.id, session_id: 'unsealed', status: 'new' }),
        prev_hash: head.hash,
      };
      await db
        .insertInto('audit_log')
        .values({ ...fields, hash: entryHash(fields) })
        .execute();
      const response = await t.request('GET', `/v1/relationships/${relationship.id}/attestation`, { key: t.keys.read });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.body.receipt, null);
      assert.equal(response.body.receipt_absent_reason, 'NOT_YET_SEALED');
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
}
