/**
 * The proofs the Neuron serves come from the nodes its commits stored (src/domains/audit/tree.ts).
 * Checked against an independent construction written here from RFC 9162 section 2.1 (MTH, PATH,
 * PROOF over the entries' leaf bytes, no stored node, no frontier), for every tree size from 1 to
 * 13 (size 1, odd sizes, powers of two), every leaf and every pair of sizes, with entries committed
 * one by one and several in one commit. SQLite, and PostgreSQL when NEURON_TEST_POSTGRES_URL is set.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { entryCanonical } from './chain.ts';
import { latestTreeHead, storedConsistencyProof, storedInclusionProof } from './tree.ts';
import { testDatabases } from '../../../test/helpers/databases.ts';
import { auditDeployment } from '../../../test/helpers/audit-deployment.ts';

const sha256 = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();

/** The largest power of two smaller than n (n > 1). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 9162 2.1.1 MTH(D[n]) over the entries' bytes. */
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha256();
  if (d.length === 1) return sha256(Buffer.from([0]), d[0]!);
  const k = split(d.length);
  return sha256(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)));
}

/** RFC 9162 2.1.3.1 PATH(m, D[n]). */
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const k = split(d.length);
  return m < k ? [...path(m, d.slice(0, k)), mth(d.slice(k))] : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}

/** RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b). */
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [mth(d)];
  const k = split(n);
  return m <= k ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))] : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}

const hex = (hashes: Buffer[]): string[] => hashes.map((h) => h.toString('hex'));

for (const backend of testDatabases()) {
  describe(`stored audit proofs against RFC 9162 (${backend.name})`, () => {
    test('inclusion and consistency proofs from the database equal PATH and PROOF for sizes 1 to 13', async (t) => {
      // One entry (the start), then single commits and groups of three in one transaction.
      const { storage, audit } = await auditDeployment(backend, t, 1);
      for (let n = 2; n <= 7; n++) await audit.record({ type: 'test.event', actor: 'system', details: { n } });
      for (let group = 0; group < 2; group++) {
        await storage.transaction(async (trx) => {
          for (let i = 0; i < 3; i++) await audit.append(trx, { type: 'test.event', actor: 'system', details: { group, i } });
        });
      }
      const entries = await audit.list({ limit: 100 });
      assert.equal(entries.length, 13);
      const d = entries.map((entry) => Buffer.from(entryCanonical(entry)));
      const head = (await latestTreeHead(storage.db))!;
      assert.equal(head.tree_size, 13);
      assert.equal(head.root_hash, mth(d).toString('hex'));

      for (let n = 1; n <= d.length; n++) {
        const tree = d.slice(0, n);
        for (let m = 0; m < n; m++) {
          assert.deepEqual(hex(await storedInclusionProof(storage.db, m, n)), hex(path(m, tree)), `PATH(${m}, D[${n}])`);
        }
        for (let m = 1; m <= n; m++) {
          assert.deepEqual(hex(await storedConsistencyProof(storage.db, m, n)), hex(subproof(m, tree, true)), `PROOF(${m}, D[${n}])`);
        }
      }
    });
  });
}
