/**
 * The Merkle module against a straightforward recursive transcription of RFC 9162 2.1 over leaf
 * arrays (no node lookups, no frontier), for every size up to 70, every leaf and every pair of
 * sizes: odd sizes, powers of two and size 1 included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  EMPTY_ROOT,
  Frontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodesNeeded,
  verifyConsistency,
  verifyInclusion,
  type Hash,
  type NodeHash,
} from './merkle.ts';

const MAX_SIZE = 70; // past 64, so trees with a full 64-leaf left half and a ragged right edge are covered

const sha = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest();
};

const entries = Array.from({ length: MAX_SIZE }, (_, i) => Buffer.from(`synthetic audit entry ${i}`));

function k(n: number): number {
  let power = 1;
  while (power * 2 < n) power *= 2;
  return power;
}

function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return sha(Buffer.from([0]), d[0]!);
  const split = k(d.length);
  return sha(Buffer.from([1]), mth(d.slice(0, split)), mth(d.slice(split)));
}

function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const split = k(d.length);
  return m < split ? [...path(m, d.slice(0, split)), mth(d.slice(split))] : [...path(m - split, d.slice(split)), mth(d.slice(0, split))];
}

function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const split = k(d.length);
  return m <= split
    ? [...subproof(m, d.slice(0, split), b), mth(d.slice(split))]
    : [...subproof(m - split, d.slice(split), false), mth(d.slice(0, split))];
}

/** Node lookups served from the leaves by the reference construction, counting reads. */
function referenceNodes(d: Buffer[], reads: { count: number }): NodeHash {
  return (level, index) => {
    reads.count += 1;
    const width = 2 ** level;
    assert.ok((index + 1) * width <= d.length, `node ${level}/${index} lies inside the tree`);
    return mth(d.slice(index * width, (index + 1) * width));
  };
}

const hex = (hashes: Hash[]): string[] => hashes.map((h) => h.toString('hex'));

test('leaf and node hashes use the RFC 9162 prefixes, and the empty root is SHA-256 of nothing', () => {
  assert.deepEqual(leafHash(entries[0]!), sha(Buffer.from([0]), entries[0]!));
  assert.deepEqual(EMPTY_ROOT, sha());
});

test('the frontier reaches the reference root at every size, and emits every complete node', () => {
  const frontier = Frontier.empty();
  assert.deepEqual(frontier.root(), mth([]));
  const stored = new Map<string, Hash>();
  for (let n = 1; n <= MAX_SIZE; n += 1) {
    for (const node of frontier.append(leafHash(entries[n - 1]!))) stored.set(`${node.level}:${node.index}`, node.hash);
    const d = entries.slice(0, n);
    assert.deepEqual(frontier.root(), mth(d), `root of size ${n}`);
    const reloaded = Frontier.fromNodes(n, (level, index) => stored.get(`${level}:${index}`)!);
    assert.deepEqual(reloaded.root(), mth(d), `frontier rebuilt from stored nodes at size ${n}`);
    assert.ok(Frontier.edgeNodes(n).length <= Math.ceil(Math.log2(n + 1)), 'O(log n) hashes on the edge');
  }
  for (const [key, hash] of stored) {
    const [level, index] = key.split(':').map(Number) as [number, number];
    assert.deepEqual(hash, mth(entries.slice(index * 2 ** level, (index + 1) * 2 ** level)), `node ${key}`);
  }
});

test('inclusion proofs equal PATH(m, D[0:n]) and verify, for every leaf of every size', () => {
  for (let n = 1; n <= MAX_SIZE; n += 1) {
    const d = entries.slice(0, n);
    const root = mth(d);
    for (let m = 0; m < n; m += 1) {
      const reads = { count: 0 };
      const proof = inclusionProof(m, n, referenceNodes(d, reads));
      assert.deepEqual(hex(proof), hex(path(m, d)), `PATH(${m}, ${n})`);
      assert.ok(reads.count <= 2 * Math.ceil(Math.log2(n + 1)), 'O(log n) node reads');
      const leaf = leafHash(d[m]!);
      assert.equal(verifyInclusion(m, n, leaf, proof, root), true);
      assert.equal(verifyInclusion(m, n, leafHash(Buffer.from('other')), proof, root), false, 'another leaf');
      if (n > 1) assert.equal(verifyInclusion((m + 1) % n, n, leaf, proof, root), false, 'another index');
      if (proof.length > 0) assert.equal(verifyInclusion(m, n, leaf, proof.slice(1), root), false, 'a shortened proof');
    }
  }
});

test('inclusion proofs that share their right-edge hashes equal the ones computed alone', () => {
  for (let n = 1; n <= MAX_SIZE; n += 1) {
    const d = entries.slice(0, n);
    const rightEdge = new Map<number, Hash>();
    // Last leaf first, as a commit group seals them: each proof reuses what the ones before computed.
    for (let m = n - 1; m >= 0; m -= 1) {
      const alone = inclusionProof(m, n, referenceNodes(d, { count: 0 }));
      assert.deepEqual(hex(inclusionProof(m, n, referenceNodes(d, { count: 0 }), rightEdge)), hex(alone), `PATH(${m}, ${n}) shared`);
    }
  }
});

test('consistency proofs equal PROOF(m, D[0:n]) and verify, for every pair of sizes', () => {
  for (let n = 1; n <= MAX_SIZE; n += 1) {
    const d = entries.slice(0, n);
    const second = mth(d);
    for (let m = 1; m <= n; m += 1) {
      const proof = consistencyProof(m, n, referenceNodes(d, { count: 0 }));
      assert.deepEqual(hex(proof), hex(subproof(m, d, true)), `PROOF(${m}, ${n})`);
      const first = mth(d.slice(0, m));
      assert.equal(verifyConsistency(m, n, first, second, proof), true, `verify ${m} -> ${n}`);
      assert.equal(verifyConsistency(m, n, leafHash(Buffer.from('forged')), second, proof), false, 'a forged first root');
      if (m < n) {
        assert.equal(verifyConsistency(m, n, first, mth(entries.slice(1, n + 1)), proof), false, 'a rewritten second tree');
        assert.equal(verifyConsistency(m, n, first, second, [...proof, EMPTY_ROOT]), false, 'a padded proof');
      }
    }
  }
});

test('nodesNeeded names exactly the nodes a proof reads', () => {
  const d = entries.slice(0, 45);
  const needed = nodesNeeded((node) => consistencyProof(13, 45, node));
  const fetched = new Map(
    needed.map(({ level, index }) => [`${level}:${index}`, mth(d.slice(index * 2 ** level, (index + 1) * 2 ** level))]),
  );
  const proof = consistencyProof(13, 45, (level, index) => fetched.get(`${level}:${index}`)!);
  assert.deepEqual(hex(proof), hex(subproof(13, d, true)));
});
