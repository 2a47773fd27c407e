/**
 * Audit receipts from real handshakes with a real Neuron (SQLite file in a temp directory, and
 * PostgreSQL when NEURON_TEST_POSTGRES_URL is set): the patient's receipt verified by the client
 * library together with the attestation, the provider notice carrying the same receipt, every
 * kind of forgery refused, and a receipt checked later against a newer tree head.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import {
  generatePatientKeys,
  ReceiptError,
  verifyAttestationWithReceipt,
  verifyReceipt,
  verifyReceiptConsistency,
  type Receipt,
  type RelationshipResult,
} from 'neuron-careagent-client';
import { AttestationError, encodeBase64url, treeHeadSignedBytes } from 'neuron-careagent-client/protocol';
import { treeHeadMessage } from '../audit/tree-head.ts';
import { readPinnedKey } from '../audit/outside.ts';
import { startNeuronWithProvider, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { testDatabases } from '../../../test/helpers/databases.ts';
import { newPatient } from '../../../test/helpers/raw-handshake.ts';
import { establishAs } from '../../../test/helpers/providers.ts';
import { sign, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';

const PROVIDER = '1679576722';
let counter = 0;

function establish(t: TestNeuron, label: string, options: { requireReceipt?: boolean } = {}): Promise<RelationshipResult> {
  return establishAs(t.handshakeUrl, newPatient(`receipt-${label}-${process.pid}-${++counter}`), PROVIDER, {
    // Synthetic front-desk demographics: they go to the directory, never into the receipt.
    profile: { display_name: 'Synthetic Receipt Person', date_of_birth: '1970-01-01' },
    ...options,
  });
}

function withReceipt(
  result: RelationshipResult,
  receipt: Receipt = result.receipt!,
): RelationshipResult['attestation'] & { receipt: Receipt } {
  return { ...result.attestation, receipt };
}

function expectReceiptError(run: () => unknown, reason: ReceiptError['reason']): void {
  assert.throws(run, (error: unknown) => error instanceof ReceiptError && error.reason === reason);
}

const flipHex = (hex: string): string => `${hex[0] === '0' ? '1' : '0'}${hex.slice(1)}`;

async function getJson(t: TestNeuron, path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${t.url}${path}`);
  assert.equal(response.status, 200, path);
  return (await response.json()) as Record<string, unknown>;
}

for (const backend of testDatabases()) {
  describe(`audit receipts (${backend.name})`, () => {
    let t: TestNeuron;
    let first: RelationshipResult;
    let second: RelationshipResult;

    before(async () => {
      // SQLite: the Neuron's own file in its data directory; PostgreSQL: a schema of its own.
      t = await startNeuronWithProvider({ npi: PROVIDER }, { backend });
      first = await establish(t, 'first', { requireReceipt: true });
      second = await establish(t, 'second');
    });
    after(async () => t?.stop());

    test('handshake.complete carries a receipt the client verifies with the attestation, under the pinned key', () => {
      const receipt = first.receipt!;
      assert.ok(receipt, 'a receipt came back');
      const pinned = readPinnedKey(t.dataDir)!.public_key;
      assert.equal(first.neuronPublicKey, pinned);
      const verified = verifyAttestationWithReceipt(withReceipt(first), pinned);
      assert.equal(verified.attested.relationship_id, first.relationshipId);
      assert.equal(verified.entry.event_type, 'handshake.completed');
      assert.equal(verified.entry.details.relationship_id, first.relationshipId);
      assert.deepEqual(verified.treeHead, first.treeHead);
      assert.ok(receipt.tree_head.tree_size >= receipt.leaf_index + 1);
      // The entry is the log's own canonical entry, and holds nothing of the patient's profile.
      assert.doesNotMatch(receipt.entry, /Synthetic Receipt Person|1970-01-01|date_of_birth|display_name/);
    });

    test("the tree head in the receipt is the one the database sealed and its signature covers the audit module's bytes", async () => {
      const head = first.receipt!.tree_head;
      const row = await sql<{ root_hash: string }>`SELECT root_hash FROM audit_tree_heads WHERE tree_size = ${head.tree_size}`.execute(
        t.neuron.storage.db,
      );
      assert.equal(row.rows[0]?.root_hash, head.root_hash);
      assert.deepEqual(treeHeadSignedBytes({ ...head, key_id: head.key.id }), treeHeadMessage({ ...head, key_id: head.key.id }));
    });

    test('the provider notice carries the same receipt', async () => {
      const rows = await sql<{ body: string }>`SELECT body FROM outbox WHERE kind = 'provider.relationship'`.execute(t.neuron.storage.db);
      const notice = rows.rows
        .map((r) => JSON.parse(r.body) as { relationship_id: string; attestation: { receipt: Receipt } })
        .find((body) => body.relationship_id === first.relationshipId);
      assert.ok(notice, 'the notice was written');
      assert.deepEqual(notice.attestation.receipt, first.receipt);
    });

    test('forged receipts are refused', () => {
      const key = first.neuronPublicKey;
      const good = first.receipt!;
      assert.ok(good.inclusion_proof.length > 0, 'the tree has more than one leaf');
      // A changed entry (another relationship id) is not the leaf the proof leads from.
      const entry = JSON.parse(good.entry) as { details: Record<string, unknown> };
      entry.details.relationship_id = second.relationshipId;
      expectReceiptError(() => verifyReceipt({ ...good, entry: JSON.stringify(entry) }, key), 'NOT_INCLUDED');
      // A changed proof hash.
      expectReceiptError(
        () => verifyReceipt({ ...good, inclusion_proof: [flipHex(good.inclusion_proof[0]!), ...good.inclusion_proof.slice(1)] }, key),
        'NOT_INCLUDED',
      );
      // A changed root or size under the old signature; a changed signature.
      expectReceiptError(
        () => verifyReceipt({ ...good, tree_head: { ...good.tree_head, root_hash: flipHex(good.tree_head.root_hash) } }, key),
        'INVALID_SIGNATURE',
      );
      const signature = Buffer.from(good.tree_head.signature, 'base64url');
      signature[0]! ^= 1;
      expectReceiptError(
        () => verifyReceipt({ ...good, tree_head: { ...good.tree_head, signature: encodeBase64url(signature) } }, key),
        'INVALID_SIGNATURE',
      );
      // Another leaf index for the same entry.
      expectReceiptError(() => verifyReceipt({ ...good, leaf_index: good.leaf_index + 1 }, key), 'ENTRY_MISMATCH');
      // A head re-signed by a key of the forger's own, however it names itself.
      const rogue = generateKeyPairSync('ed25519');
      const roguePublic = rogue.publicKey.export({ format: 'jwk' }).x!;
      const forgedHead = { ...good.tree_head, key: { id: 'rogue', public_key: roguePublic } };
      forgedHead.signature = encodeBase64url(sign(null, treeHeadSignedBytes({ ...forgedHead, key_id: 'rogue' }), rogue.privateKey));
      expectReceiptError(() => verifyReceipt({ ...good, tree_head: forgedHead }, key), 'UNTRUSTED_KEY');
      expectReceiptError(() => verifyReceipt(good, roguePublic), 'UNTRUSTED_KEY');
      // The right key for the wrong relationship: the second patient's receipt beside the first's attestation.
      expectReceiptError(() => verifyAttestationWithReceipt(withReceipt(first, second.receipt!), key), 'ENTRY_MISMATCH');
      // The attestation under a wrong key fails first.
      assert.throws(() => verifyAttestationWithReceipt(withReceipt(first), roguePublic), AttestationError);
      expectReceiptError(() => verifyAttestationWithReceipt(first.attestation, key), 'MISSING');
      expectReceiptError(() => verifyReceipt({ ...good, inclusion_proof: 'x' }, key), 'MALFORMED');
    });

    test('a receipt checks later against a newer tree head with a consistency proof from the Neuron', async () => {
      for (let i = 0; i < 3; i += 1) await establish(t, `later-${i}`);
      const receipt = first.receipt!;
      const newer = await getJson(t, '/v1/audit/tree-head');
      assert.ok((newer.tree_size as number) > receipt.tree_head.tree_size);
      const proof = await getJson(
        t,
        `/v1/audit/proofs/consistency?first=${receipt.tree_head.tree_size}&second=${newer.tree_size as number}`,
      );
      const checked = verifyReceiptConsistency(receipt, newer, proof.proof as string[]);
      assert.equal(checked.tree_size, newer.tree_size);
      const bad = [...(proof.proof as string[])];
      bad[bad.length - 1] = flipHex(bad[bad.length - 1]!);
      expectReceiptError(() => verifyReceiptConsistency(receipt, newer, bad), 'INCONSISTENT');
      // A newer head whose signature was not made by the organization key.
      expectReceiptError(
        () => verifyReceiptConsistency(receipt, { ...newer, signature: receipt.tree_head.signature }, proof.proof as string[]),
        'INVALID_SIGNATURE',
      );
      const other = generatePatientKeys().publicKeyB64;
      expectReceiptError(() => verifyReceiptConsistency(receipt, newer, proof.proof as string[], other), 'UNTRUSTED_KEY');
    });
  });
}

test('the worked example in docs/protocol.md verifies, and checks against its newer head', () => {
  const docs = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
  const example = docs.slice(docs.indexOf('### Worked example'), docs.indexOf('### Verifying a receipt'));
  const blocks = [...example.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as unknown);
  assert.equal(blocks.length, 2);
  const receipt = blocks[0] as Receipt;
  const key = 'NDlrcp1sSNETwGM1Yg1boz4ReDxOx9oXJPPC9FLeXeU';
  assert.equal(verifyReceipt(receipt, key).entry.details.relationship_id, '0b9a3f8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
  const proof = [...example.matchAll(/^`([0-9a-f]{64})`/gm)].map((m) => m[1]!);
  assert.equal(proof.length, 4);
  assert.equal(verifyReceiptConsistency(receipt, blocks[1], proof, key).tree_size, 5);
});
