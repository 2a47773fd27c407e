/**
 * A handshake after the organization key was rotated beside the running Neuron (as `neuron key
 * rotate` does, with a key object and an audit log of its own): the Neuron's next commit signs
 * with the new key, the attestation and its receipt name the same key, the client library verifies
 * them with it, a receipt from before the rotation is consistent with a tree head after it under
 * both keys, and the whole log verifies from the pinned genesis key. SQLite, and PostgreSQL when
 * NEURON_TEST_POSTGRES_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import {
  ReceiptError,
  verifyAttestationWithReceipt,
  verifyReceiptConsistency,
  type Receipt,
  type RelationshipResult,
} from 'neuron-careagent-client';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { createLogger } from '../../foundation/observability/logger.ts';
import { AuditLog, appendTreeHeadSync, readPinnedKey, rotateOrganizationKey } from '../audit/index.ts';
import { startNeuronWithProvider, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { testDatabases } from '../../../test/helpers/databases.ts';
import { newPatient } from '../../../test/helpers/raw-handshake.ts';
import { establishAs } from '../../../test/helpers/providers.ts';

const PROVIDER = '1245319599';

function establish(t: TestNeuron, label: string): Promise<RelationshipResult> {
  return establishAs(t.handshakeUrl, newPatient(`rotation-${label}-${process.pid}`), PROVIDER, { requireReceipt: true });
}

for (const backend of testDatabases()) {
  describe(`handshakes across a key rotation (${backend.name})`, () => {
    let t: TestNeuron;
    let beforeRotation: RelationshipResult;
    let afterRotation: RelationshipResult;
    let oldKey: string;
    let newKey: string;

    before(async () => {
      t = await startNeuronWithProvider({ npi: PROVIDER }, { backend });
      beforeRotation = await establish(t, 'before');
      // What `neuron key rotate` does: its own key object and audit log over the same database and data directory.
      const { key } = await ensureOrganizationKey(t.neuron.storage.db);
      const audit = new AuditLog({
        storage: t.neuron.storage,
        key,
        logger: createLogger({ level: 'silent', pretty: 'never' }),
        dataDir: t.dataDir,
        onTreeHead: (head) => appendTreeHeadSync(t.dataDir, head),
      });
      const rotated = await rotateOrganizationKey({ storage: t.neuron.storage, audit, key, actor: 'cli' });
      oldKey = rotated.previous.publicKey;
      newKey = rotated.next.publicKey;
      afterRotation = await establish(t, 'after');
    });
    after(async () => t?.stop());

    test('the attestation and receipt after the rotation are the new key’s, and the client verifies them with it', () => {
      assert.notEqual(oldKey, newKey);
      assert.equal(beforeRotation.neuronPublicKey, oldKey);
      assert.equal(afterRotation.neuronPublicKey, newKey);
      assert.equal(afterRotation.receipt!.tree_head.key.public_key, newKey);
      const verified = verifyAttestationWithReceipt({ ...afterRotation.attestation, receipt: afterRotation.receipt! }, newKey);
      assert.equal(verified.attested.relationship_id, afterRotation.relationshipId);
      assert.throws(
        () => verifyAttestationWithReceipt({ ...afterRotation.attestation, receipt: afterRotation.receipt! }, oldKey),
        'the old key alone does not verify what the new one signed',
      );
    });

    test('the provider notice after the rotation carries the new key’s attestation and receipt', async () => {
      const rows = await sql<{ body: string }>`SELECT body FROM outbox WHERE kind = 'provider.relationship'`.execute(t.neuron.storage.db);
      const notice = rows.rows
        .map(
          (r) => JSON.parse(r.body) as { relationship_id: string; attestation: { payload: string; signature: string; receipt: Receipt } },
        )
        .find((body) => body.relationship_id === afterRotation.relationshipId);
      assert.ok(notice);
      verifyAttestationWithReceipt(notice.attestation, newKey);
    });

    test('a receipt from before the rotation is consistent with a tree head after it, under both keys', async () => {
      const older = beforeRotation.receipt!;
      const newer = afterRotation.receipt!.tree_head;
      const response = await fetch(`${t.url}/v1/audit/proofs/consistency?first=${older.tree_head.tree_size}&second=${newer.tree_size}`);
      const { proof } = (await response.json()) as { proof: string[] };
      assert.equal(verifyReceiptConsistency(older, newer, proof, [oldKey, newKey]).tree_size, newer.tree_size);
      assert.throws(
        () => verifyReceiptConsistency(older, newer, proof, oldKey),
        (error: unknown) => error instanceof ReceiptError && error.reason === 'UNTRUSTED_KEY',
      );
    });

    test('the log verifies from the pinned genesis key, across the rotation', async () => {
      assert.equal(readPinnedKey(t.dataDir)!.public_key, oldKey);
      const result = await t.neuron.audit.verify();
      assert.equal(result.ok, true, result.problem ?? '');
    });
  });
}
