/**
 * /v1/audit: paging through the log and verifying it over the API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';
import { leafHash, verifyConsistency, verifyInclusion } from 'neuron-careagent-client/protocol';
import { ensureOrganizationKey } from '../../foundation/organization/keys.ts';
import { createLogger } from '../../foundation/observability/logger.ts';
import { AuditLog } from './service.ts';
import { rotateOrganizationKey } from './rotation.ts';
import { entryLeafHash } from './chain.ts';
import { treeHeadSignedBy } from './tree-head.ts';

describe('/v1/audit', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('pages through every entry in order, with filters', async () => {
    for (let i = 0; i < 3; i += 1) {
      const r = await insertRelationship(t.neuron);
      await t.request('POST', `/v1/relationships/${r.id}/suspend`, { key: t.keys.write, body: { reason: `r${i}` } });
    }
    const seqs: number[] = [];
    let after: string | null = null;
    do {
      const page: any = await t.request('GET', `/v1/audit/events?limit=2${after ? `&after=${after}` : ''}`, { key: t.keys.read });
      assert.equal(page.status, 200);
      seqs.push(...page.body.items.map((e: { seq: number }) => e.seq));
      after = page.body.next;
    } while (after !== null);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
      'every entry once, in order',
    );

    const filtered = await t.request('GET', '/v1/audit/events?event_type=relationship.suspended', { key: t.keys.read });
    assert.equal(filtered.body.items.length, 3);
    const entry = filtered.body.items[0];
    assert.equal(entry.actor, 'api-key:writer');
    assert.equal(typeof entry.details, 'object');
    assert.match(entry.hash, /^[0-9a-f]{64}$/);

    assertProblem(await t.request('GET', '/v1/audit/events?event_type=DROP%20TABLE', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    const foreign = Buffer.from(JSON.stringify(['2030-01-01T00:00:00.000Z', 'x'])).toString('base64url');
    assertProblem(await t.request('GET', `/v1/audit/events?after=${foreign}`, { key: t.keys.read }), 400, 'INVALID_CURSOR');
    assertProblem(await t.request('GET', '/v1/audit/events'), 401, 'UNAUTHENTICATED');
  });

  it('verifies the chain, and finds an altered entry', async () => {
    const good = await t.request('POST', '/v1/audit/verify', { key: t.keys.read });
    assert.equal(good.status, 200);
    assert.equal(good.body.ok, true);
    assert.ok(good.body.entries > 0);
    assert.equal(good.body.first_bad_seq, null);
    assertProblem(await t.request('POST', '/v1/audit/verify'), 401, 'UNAUTHENTICATED');

    await t.neuron.storage.db.updateTable('audit_log').set({ actor: 'someone-else' }).where('seq', '=', 2).execute();
    const bad = await t.request('POST', '/v1/audit/verify', { key: t.keys.read });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.ok, false);
    assert.equal(bad.body.first_bad_seq, 2);
    assert.match(bad.body.problem, /changed/);
  });

  it('serves the signed tree head and proofs without a credential, and they verify', async () => {
    const first: any = await t.request('GET', '/v1/audit/tree-head');
    assert.equal(first.status, 200);
    const head = first.body;
    assert.equal(head.key.public_key, t.neuron.organizationKey.publicKey);
    assert.equal(treeHeadSignedBy(head, new Set([t.neuron.organizationKey.publicKey])), true);

    await t.neuron.audit.record({ type: 'test.event', actor: 'system', details: { n: 1 } });
    await t.neuron.audit.record({ type: 'test.event', actor: 'system', details: { n: 2 } });
    const second: any = (await t.request('GET', '/v1/audit/tree-head')).body;
    assert.equal(second.tree_size, head.tree_size + 2);

    const hashes = (hex: string[]): Buffer[] => hex.map((h) => Buffer.from(h, 'hex'));
    const entries = await t.neuron.audit.list({ limit: second.tree_size });
    for (const leafIndex of [0, head.tree_size - 1, second.tree_size - 1]) {
      const proof: any = await t.request('GET', `/v1/audit/proofs/inclusion?leaf_index=${leafIndex}&tree_size=${second.tree_size}`);
      assert.equal(proof.status, 200);
      assert.equal(
        verifyInclusion(
          leafIndex,
          second.tree_size,
          entryLeafHash(entries[leafIndex]!),
          hashes(proof.body.proof),
          Buffer.from(second.root_hash, 'hex'),
        ),
        true,
      );
    }
    const consistency: any = await t.request('GET', `/v1/audit/proofs/consistency?first=${head.tree_size}&second=${second.tree_size}`);
    assert.equal(consistency.status, 200);
    assert.equal(
      verifyConsistency(
        head.tree_size,
        second.tree_size,
        Buffer.from(head.root_hash, 'hex'),
        Buffer.from(second.root_hash, 'hex'),
        hashes(consistency.body.proof),
      ),
      true,
    );

    assertProblem(
      await t.request('GET', `/v1/audit/proofs/consistency?first=${second.tree_size}&second=${second.tree_size + 5}`),
      400,
      'VALIDATION_FAILED',
    );
    assertProblem(await t.request('GET', '/v1/audit/proofs/consistency?first=3&second=2'), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/audit/proofs/inclusion?leaf_index=2&tree_size=2'), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/audit/proofs/inclusion?leaf_index=0&tree_size=1e309'), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/audit/proofs/inclusion?leaf_index=-1&tree_size=2'), 400, 'VALIDATION_FAILED');
  });
  it('serves the key rotations in a tree size without a credential, each included in that tree', async () => {
    const before: any = (await t.request('GET', '/v1/audit/tree-head')).body;
    const none: any = await t.request('GET', `/v1/audit/key-rotations?tree_size=${before.tree_size}`);
    assert.equal(none.status, 200);
    assert.deepEqual(none.body, { tree_size: before.tree_size, rotations: [] });

    const { key } = await ensureOrganizationKey(t.neuron.storage.db);
    const audit = new AuditLog({ storage: t.neuron.storage, key, logger: createLogger({ level: 'silent', pretty: 'never' }) });
    const rotated = await rotateOrganizationKey({ storage: t.neuron.storage, audit, key, actor: 'cli' });
    const head: any = (await t.request('GET', '/v1/audit/tree-head')).body;
    const answer: any = await t.request('GET', `/v1/audit/key-rotations?tree_size=${head.tree_size}`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.rotations.length, 1);
    const [rotation] = answer.body.rotations;
    assert.equal(rotation.leaf_index, rotated.seq - 1);
    assert.equal(JSON.parse(rotation.entry).details.new_public_key, rotated.next.publicKey);
    const proof = rotation.inclusion_proof.map((h: string) => Buffer.from(h, 'hex'));
    assert.equal(
      verifyInclusion(
        rotation.leaf_index,
        head.tree_size,
        leafHash(Buffer.from(rotation.entry)),
        proof,
        Buffer.from(head.root_hash, 'hex'),
      ),
      true,
    );
    assertProblem(await t.request('GET', `/v1/audit/key-rotations?tree_size=${head.tree_size + 5}`), 400, 'VALIDATION_FAILED');
  });
});
