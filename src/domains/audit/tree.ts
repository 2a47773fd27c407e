/**
 * The audit log's Merkle tree in the database (docs/storage.md "Audit tree"): sealing and proofs.
 *
 * Sealing runs once per transaction that appended entries, just before its COMMIT
 * (Storage.beforeCommit): under the audit chain lock, it reads the latest signed tree head,
 * extends that tree with the entries committed since, writes every subtree those entries complete
 * and one new signed tree head. Every instance sharing a PostgreSQL database takes the same lock
 * and extends the latest head, so tree heads never fork whichever instance signs. The frontier
 * (O(log n) hashes) is cached between commits and reloaded from the stored nodes when another
 * instance moved the tree meanwhile.
 */
import { StorageError, isoNow, type Db, type Storage } from '../../foundation/storage/index.ts';
import { Statement } from '../../foundation/storage/statements.ts';
import { CurrentOrganizationKey, type OrganizationKey } from '../../foundation/organization/keys.ts';
import {
  Frontier,
  consistencyProof,
  inclusionProof,
  nodesNeeded,
  type CompletedNode,
  type Hash,
  type NodeHash,
  type NodeRef,
} from 'neuron-careagent-client/protocol';
import { entryLeafHash, type AuditEntry } from './chain.ts';
import type { Receipt } from 'neuron-careagent-client/protocol';
import { signTreeHead, treeHeadFromRow, treeHeadToRow, type TreeHead } from './tree-head.ts';

/** A leaf appended in an open transaction, not yet sealed. */
interface PendingLeaf {
  entry: AuditEntry;
  leaf: Hash;
  ticket?: ReceiptTicket;
}

/** Filled while sealing: the tree head covering one entry and the entry's inclusion proof. */
export interface ReceiptTicket {
  /** `inclusionProof` in hex, as the receipt carries it. */
  proof: { treeHead: TreeHead; leafIndex: number; inclusionProof: string[] } | null;
  /** The entry's canonical JSON text (the leaf's bytes), set by AuditLog.append. */
  entryText?: string;
  /** receiptFromTicket's answer, made once for the notice and the attestation alike. */
  receipt?: Receipt;
  /**
   * Runs in the sealing transaction once `proof` is set, before COMMIT (the handshake writes its
   * provider notice, which carries the receipt, here). Throwing rolls the whole commit back.
   */
  onProof?: (trx: Db) => Promise<void>;
}

const READ_CHAIN_HEAD = new Statement('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
const READ_TREE_HEAD = new Statement(
  'SELECT tree_size, root_hash, timestamp, key_id, public_key, signature FROM audit_tree_heads ORDER BY tree_size DESC LIMIT 1',
);
const INSERT_TREE_HEAD = new Statement(
  'INSERT INTO audit_tree_heads (tree_size, root_hash, timestamp, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)',
);

/** Nodes per INSERT: one statement per commit group as a rule, and at most this many distinct statement texts. */
const NODE_INSERT_CHUNK = 64;
const nodeInserts = new Map<number, Statement>();
function nodeInsert(rows: number): Statement {
  let statement = nodeInserts.get(rows);
  if (statement === undefined) {
    // A node is a function of the entries below it; rewriting one found there (left by a
    // tampered database whose tree heads were removed) keeps the stored tree true to the log.
    statement = new Statement(
      `INSERT INTO audit_tree_nodes (level, idx, hash) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?)').join(', ')} ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash`,
    );
    nodeInserts.set(rows, statement);
  }
  return statement;
}

/** A node's key in the seal's lookup: levels stay below 64 and indexes below 2^47, so it is exact. */
function nodeKey(level: number, index: number): number {
  return index * 64 + level;
}

/** Entries read per query while catching up a log written before the tree existed (migration 004). */
const CATCH_UP_PAGE = 1_000;

type TreeHeadRow = Parameters<typeof treeHeadFromRow>[0];

export class AuditTree {
  readonly #storage: Storage;
  readonly #key: OrganizationKey;
  readonly #onSealed: (head: TreeHead) => void;
  readonly #pending = new WeakMap<Db, Map<number, PendingLeaf>>();
  /** The frontier after the last head this process sealed or loaded. */
  #cached: { size: number; root: string; frontier: Frontier } | null = null;

  constructor(options: { storage: Storage; key: OrganizationKey; onSealed?: (head: TreeHead) => void }) {
    this.#storage = options.storage;
    this.#key = options.key;
    this.#onSealed = options.onSealed ?? (() => undefined);
  }

  /** Notes an entry appended in `trx` (which holds the chain lock), to be sealed at its commit. */
  track(trx: Db, entry: AuditEntry, leaf: Hash, ticket?: ReceiptTicket): void {
    let leaves = this.#pending.get(trx);
    if (leaves === undefined) {
      leaves = new Map();
      this.#pending.set(trx, leaves);
      this.#storage.beforeCommit(trx, 'audit_tree', () => this.#seal(trx));
    }
    // The latest append of a seq wins: an earlier one was rolled back to its savepoint.
    leaves.set(entry.seq, { entry, leaf, ...(ticket ? { ticket } : {}) });
  }

  /** Seals whatever the log holds beyond the latest tree head, in a transaction of its own. */
  async sealNow(): Promise<TreeHead | null> {
    let sealed: TreeHead | null = null;
    await this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      this.#storage.beforeCommit(trx, 'audit_tree', () => this.#sealIn(trx, new Map(), (head) => (sealed = head)));
    });
    return sealed;
  }

  async #seal(trx: Db): Promise<(() => void) | undefined> {
    await this.#storage.lock(trx, 'audit_chain');
    return this.#sealIn(trx, this.#pending.get(trx) ?? new Map());
  }

  async #sealIn(trx: Db, pending: Map<number, PendingLeaf>, report?: (head: TreeHead) => void): Promise<(() => void) | undefined> {
    const chainHead = (await READ_CHAIN_HEAD.execute<{ seq: number; hash: string }>(trx, [])).rows[0];
    const latest = (await READ_TREE_HEAD.execute<TreeHeadRow>(trx, [])).rows[0];
    const fromSize = latest?.tree_size ?? 0;
    if (chainHead === undefined || chainHead.seq <= fromSize) return undefined;
    // Another instance rotated the key (its rotation's head is the new key's): take the active key
    // before signing, so heads never go back to the old key. A read only when the key id differs.
    if (latest !== undefined && latest.key_id !== this.#key.id && this.#key instanceof CurrentOrganizationKey) await this.#key.reload(trx);

    const frontier = await this.#frontierAt(trx, latest);
    const known = new Map<number, Hash>();
    for (const n of frontier.nodes()) known.set(nodeKey(n.level, n.index), n.hash);
    const completed: CompletedNode[] = [];
    const leaves = this.#committedLeaves(pending, fromSize, chainHead) ?? (await this.#readLeaves(trx, fromSize, pending));
    for (const leaf of leaves) {
      for (const node of frontier.append(leaf.leaf)) {
        completed.push(node);
        known.set(nodeKey(node.level, node.index), node.hash);
      }
    }
    // A node's hex is made once per group, for its row and for every receipt whose proof holds it.
    const hex = new Map<Hash, string>();
    const hexOf = (hash: Hash): string => {
      let text = hex.get(hash);
      if (text === undefined) {
        text = hash.toString('hex');
        hex.set(hash, text);
      }
      return text;
    };
    for (let i = 0; i < completed.length; i += NODE_INSERT_CHUNK) {
      const end = Math.min(i + NODE_INSERT_CHUNK, completed.length);
      const parameters: Array<number | string> = [];
      for (let j = i; j < end; j += 1) {
        const n = completed[j]!;
        parameters.push(n.level, n.index, hexOf(n.hash));
      }
      await nodeInsert(end - i).execute(trx, parameters);
    }
    const root = frontier.root().toString('hex');
    const head = signTreeHead(this.#key, { tree_size: frontier.size, root_hash: root, timestamp: isoNow() });
    const row = treeHeadToRow(head);
    await INSERT_TREE_HEAD.execute(trx, [row.tree_size, row.root_hash, row.timestamp, row.key_id, row.public_key, row.signature]);

    // Every node a proof in this tree needs for these leaves was completed here or is on the old
    // frontier: O(log n) hashes per receipt, no query.
    const lookup: NodeHash = (level, index) => known.get(nodeKey(level, index))!;
    const rightEdge = new Map<number, Hash>();
    for (const leaf of leaves) {
      if (leaf.ticket === undefined) continue;
      const leafIndex = leaf.entry.seq - 1;
      const path = inclusionProof(leafIndex, frontier.size, lookup, rightEdge);
      leaf.ticket.proof = { treeHead: head, leafIndex, inclusionProof: path.map(hexOf) };
      delete leaf.ticket.receipt;
      await leaf.ticket.onProof?.(trx);
    }
    return () => {
      this.#cached = { size: frontier.size, root, frontier };
      report?.(head);
      try {
        this.#onSealed(head);
      } catch {
        // The commit happened; a failing listener (the outside file) reports by itself.
      }
    };
  }

  /** The frontier of the latest tree head: cached, or rebuilt from its O(log n) stored nodes. */
  async #frontierAt(trx: Db, latest: TreeHeadRow | undefined): Promise<Frontier> {
    if (latest === undefined) return Frontier.empty();
    const cached = this.#cached;
    if (cached !== null && cached.size === latest.tree_size && cached.root === latest.root_hash) return cached.frontier.clone();
    const nodes = await readNodes(trx, Frontier.edgeNodes(latest.tree_size));
    const frontier = Frontier.fromNodes(latest.tree_size, nodes);
    if (frontier.root().toString('hex') !== latest.root_hash) {
      throw new StorageError(
        `the audit tree's stored nodes do not match its tree head of size ${latest.tree_size}; run neuron audit verify`,
      );
    }
    return frontier;
  }

  /**
   * The leaves after `fromSize` from this transaction's own appends, when they account for every
   * one up to the chain head (the usual case); null when anything else appended (read them back).
   */
  #committedLeaves(pending: Map<number, PendingLeaf>, fromSize: number, chainHead: { seq: number; hash: string }): PendingLeaf[] | null {
    const leaves: PendingLeaf[] = [];
    for (let seq = fromSize + 1; seq <= chainHead.seq; seq += 1) {
      const leaf = pending.get(seq);
      if (leaf === undefined) return null;
      if (leaves.length > 0 && leaf.entry.prev_hash !== leaves[leaves.length - 1]!.entry.hash) return null;
      leaves.push(leaf);
    }
    return leaves[leaves.length - 1]?.entry.hash === chainHead.hash ? leaves : null;
  }

  /** Reads the leaves back; this transaction's own entries keep their receipt tickets. */
  async #readLeaves(trx: Db, fromSize: number, pending: Map<number, PendingLeaf>): Promise<PendingLeaf[]> {
    const leaves: PendingLeaf[] = [];
    for (let after = fromSize; ; ) {
      const page = await trx
        .selectFrom('audit_log')
        .selectAll()
        .where('seq', '>', after)
        .orderBy('seq', 'asc')
        .limit(CATCH_UP_PAGE)
        .execute();
      for (const entry of page) {
        const ticket = pending.get(entry.seq)?.entry.hash === entry.hash ? pending.get(entry.seq)!.ticket : undefined;
        leaves.push({ entry, leaf: entryLeafHash(entry), ...(ticket ? { ticket } : {}) });
      }
      if (page.length < CATCH_UP_PAGE) return leaves;
      after = page[page.length - 1]!.seq;
    }
  }
}

/** Reads the named nodes in one query; a missing one is a StorageError (the tree was damaged). */
export async function readNodes(db: Db, refs: NodeRef[]): Promise<NodeHash> {
  const found = new Map<string, Hash>();
  if (refs.length > 0) {
    const rows = await db
      .selectFrom('audit_tree_nodes')
      .select(['level', 'idx', 'hash'])
      .where((eb) => eb.or(refs.map((r) => eb.and([eb('level', '=', r.level), eb('idx', '=', r.index)]))))
      .execute();
    for (const row of rows) found.set(`${row.level}:${row.idx}`, Buffer.from(row.hash, 'hex'));
  }
  return (level, index) => {
    const hash = found.get(`${level}:${index}`);
    if (hash === undefined) throw new StorageError(`the audit tree has no node ${level}/${index}; run neuron audit verify`);
    return hash;
  };
}

export async function latestTreeHead(db: Db): Promise<TreeHead | null> {
  const row = (await READ_TREE_HEAD.execute<TreeHeadRow>(db, [])).rows[0];
  return row === undefined ? null : treeHeadFromRow(row);
}

/** PATH(leafIndex, D[0:treeSize]) from the stored nodes: O(log n) rows in one query. */
export async function storedInclusionProof(db: Db, leafIndex: number, treeSize: number): Promise<Hash[]> {
  const nodes = await readNodes(
    db,
    nodesNeeded((node) => inclusionProof(leafIndex, treeSize, node)),
  );
  return inclusionProof(leafIndex, treeSize, nodes);
}

/** PROOF(first, D[0:second]) from the stored nodes: O(log n) rows in one query. */
export async function storedConsistencyProof(db: Db, first: number, second: number): Promise<Hash[]> {
  const nodes = await readNodes(
    db,
    nodesNeeded((node) => consistencyProof(first, second, node)),
  );
  return consistencyProof(first, second, nodes);
}

/**
 * The wire receipt (docs/protocol.md "Audit receipts") of an entry appended with `ticket`, once
 * its commit sealed it. A StorageError when the seal left the ticket unfilled, which would be a
 * bug: nothing is answered without its receipt.
 */
export function receiptFromTicket(ticket: ReceiptTicket): Receipt {
  if (ticket.receipt !== undefined) return ticket.receipt;
  const proof = ticket.proof;
  if (proof === null || ticket.entryText === undefined)
    throw new StorageError('the audit entry committed without a receipt from its tree head');
  ticket.receipt = {
    entry: ticket.entryText,
    leaf_index: proof.leafIndex,
    inclusion_proof: proof.inclusionProof,
    tree_head: proof.treeHead,
  };
  return ticket.receipt;
}
