/**
 * The Merkle tree of RFC 9162 (Certificate Transparency 2.0) section 2.1, as pure functions: the
 * audit log's tree heads, inclusion proofs and consistency proofs. No I/O.
 *
 * A tree over n leaves is described by its aligned complete subtrees: node (level, index) covers
 * leaves [index * 2^level, (index + 1) * 2^level). Every hash the RFC's recursive definitions need
 * is either such a node or a right-edge range [start, n) made of them, so the proof functions
 * take a `NodeHash` lookup; a caller that stores nodes in a database first asks `nodesNeeded`
 * which ones to fetch (O(log n) of them), then runs the same function over what it fetched.
 */
import { createHash } from 'node:crypto';

export type Hash = Buffer;

/** Hash of an aligned complete subtree: level 0 is a leaf hash. */
export type NodeHash = (level: number, index: number) => Hash;

export interface NodeRef {
  level: number;
  index: number;
}

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** RFC 9162 2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). */
export function leafHash(entry: Uint8Array): Hash {
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
}

/** RFC 9162 2.1.1: SHA-256(0x01 || left || right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** MTH of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Hash = createHash('sha256').digest();

/** The largest power of two smaller than n (n > 1): the RFC's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function log2(n: number): number {
  return Math.round(Math.log2(n));
}

/**
 * MTH(D[start:end]) where start is aligned to the largest power of two not above end - start,
 * which holds for every range the RFC's recursions visit. The only ranges that are not a stored
 * node end at the tree's size: `rightEdge`, when given, keeps their hashes by start, so proofs in
 * the same tree (a commit group's receipts) compute each of them once.
 */
export function rangeHash(start: number, end: number, node: NodeHash, rightEdge?: Map<number, Hash>): Hash {
  const size = end - start;
  if (size <= 0) throw new RangeError('empty range');
  if (isPowerOfTwo(size)) return node(log2(size), start / size);
  const known = rightEdge?.get(start);
  if (known !== undefined) return known;
  const k = splitPoint(size);
  const hash = nodeHash(rangeHash(start, start + k, node), rangeHash(start + k, end, node, rightEdge));
  rightEdge?.set(start, hash);
  return hash;
}

/** RFC 9162 2.1.3.1: PATH(m, D[0:n]), the audit path of leaf m in the tree of size n. */
export function inclusionProof(
  leafIndex: number,
  treeSize: number,
  node: NodeHash,
  /** Shared by proofs in a tree of this same size (rangeHash). */
  rightEdge?: Map<number, Hash>,
): Hash[] {
  if (!(leafIndex >= 0 && leafIndex < treeSize)) throw new RangeError('leaf index outside the tree');
  const path: Hash[] = [];
  const walk = (m: number, start: number, end: number): void => {
    const size = end - start;
    if (size === 1) return;
    const k = splitPoint(size);
    if (m < k) {
      walk(m, start, start + k);
      path.push(rangeHash(start + k, end, node, rightEdge));
    } else {
      walk(m - k, start + k, end);
      path.push(rangeHash(start, start + k, node));
    }
  };
  walk(leafIndex, 0, treeSize);
  return path;
}

/** RFC 9162 2.1.4.1: PROOF(m, D[0:n]), the consistency proof from size m to size n. */
export function consistencyProof(first: number, second: number, node: NodeHash): Hash[] {
  if (!(first > 0 && first <= second)) throw new RangeError('consistency needs 0 < first <= second');
  const proof: Hash[] = [];
  const subproof = (m: number, start: number, end: number, complete: boolean): void => {
    const size = end - start;
    if (m === size) {
      if (!complete) proof.push(rangeHash(start, end, node));
      return;
    }
    const k = splitPoint(size);
    if (m <= k) {
      subproof(m, start, start + k, complete);
      proof.push(rangeHash(start + k, end, node));
    } else {
      subproof(m - k, start + k, end, false);
      proof.push(rangeHash(start, start + k, node));
    }
  };
  subproof(first, 0, second, true);
  return proof;
}

/** The nodes a proof function reads, so a store can fetch them in one query first. */
export function nodesNeeded(run: (node: NodeHash) => unknown): NodeRef[] {
  const seen = new Map<string, NodeRef>();
  const placeholder = Buffer.alloc(32);
  run((level, index) => {
    seen.set(`${level}:${index}`, { level, index });
    return placeholder;
  });
  return [...seen.values()];
}

/** RFC 9162 2.1.3.2: does `proof` show that `leaf` is leaf `leafIndex` of the tree with `root`? */
export function verifyInclusion(leafIndex: number, treeSize: number, leaf: Hash, proof: readonly Hash[], root: Hash): boolean {
  if (!(leafIndex >= 0 && leafIndex < treeSize)) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 2.1.4.2: does `proof` show the tree (second, secondRoot) extends (first, firstRoot)? */
export function verifyConsistency(first: number, second: number, firstRoot: Hash, secondRoot: Hash, proof: readonly Hash[]): boolean {
  if (!(first > 0 && first <= second)) return false;
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(firstRoot) && sr.equals(secondRoot);
}

/** A node completed by an append: what a store writes so later proofs are lookups. */
export interface CompletedNode extends NodeRef {
  hash: Hash;
}

/**
 * The right edge of a tree: one complete subtree per set bit of its size, largest first
 * (O(log n) hashes). Appending a leaf merges equal-sized subtrees; the root folds them from the
 * right. This is all a writer keeps to extend the tree.
 */
export class Frontier {
  #treeSize: number;
  readonly #edges: Hash[];

  private constructor(options: {
    treeSize: number;
    /** Hashes of the subtrees, largest (leftmost) first. */
    edges: Hash[];
  }) {
    this.#treeSize = options.treeSize;
    this.#edges = options.edges;
  }

  static empty(): Frontier {
    return new Frontier({ treeSize: 0, edges: [] });
  }

  /** The subtrees a tree of `size` leaves keeps on its right edge, largest first. */
  static edgeNodes(size: number): NodeRef[] {
    const nodes: NodeRef[] = [];
    let start = 0;
    for (let level = Math.floor(Math.log2(Math.max(size, 1))) + 1; level >= 0; level -= 1) {
      const width = 2 ** level;
      if (Math.floor(size / width) % 2 === 1) {
        nodes.push({ level, index: start / width });
        start += width;
      }
    }
    return nodes;
  }

  static fromNodes(size: number, node: NodeHash): Frontier {
    return new Frontier({ treeSize: size, edges: Frontier.edgeNodes(size).map(({ level, index }) => node(level, index)) });
  }

  get size(): number {
    return this.#treeSize;
  }

  clone(): Frontier {
    return new Frontier({ treeSize: this.#treeSize, edges: [...this.#edges] });
  }

  /** The right-edge nodes with their coordinates, largest first. */
  nodes(): CompletedNode[] {
    return Frontier.edgeNodes(this.#treeSize).map((ref, i) => ({ ...ref, hash: this.#edges[i]! }));
  }

  /** Appends one leaf hash; returns every node it completes (the leaf itself first). */
  append(leaf: Hash): CompletedNode[] {
    const index = this.#treeSize;
    const completed: CompletedNode[] = [{ level: 0, index, hash: leaf }];
    let hash = leaf;
    let level = 0;
    // Each trailing one bit of the old size is a subtree of the same width to merge with.
    while (Math.floor(index / 2 ** level) % 2 === 1) {
      hash = nodeHash(this.#edges.pop()!, hash);
      level += 1;
      completed.push({ level, index: Math.floor(index / 2 ** level), hash });
    }
    this.#edges.push(hash);
    this.#treeSize += 1;
    return completed;
  }

  root(): Hash {
    if (this.#edges.length === 0) return EMPTY_ROOT;
    let root = this.#edges[this.#edges.length - 1]!;
    for (let i = this.#edges.length - 2; i >= 0; i -= 1) root = nodeHash(this.#edges[i]!, root);
    return root;
  }
}
