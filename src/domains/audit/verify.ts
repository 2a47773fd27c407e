/**
 * Verifying the audit log (`neuron audit verify`, `POST /v1/audit/verify`): one pass over the
 * entries in constant memory that checks the hash chain, rebuilds the Merkle tree and, as it
 * reaches each tree head's size, compares the root. Tree heads come from the database and from
 * outside it (the tree-head file, heads given by a witness or a receipt); every one must be signed
 * by a trusted key, which never comes from the database (src/domains/audit/outside.ts). Trust starts
 * at the pinned key and moves along the log: a rotation entry signed by the key trusted at its
 * place makes its new key the trusted one from there on (./rotation.ts), and a head of size N must
 * be signed by the key trusted after entry N. Checkpoints, the older signed chain heads, may be
 * signed by any key so reached.
 */
import type { Db } from '../../foundation/storage/index.ts';
import type { AuditCheckpointsTable } from '../../foundation/storage/tables.ts';
import { verifyOrganizationSignature } from '../../foundation/organization/keys.ts';
import { Frontier } from 'neuron-careagent-client/protocol';
import { ChainWalker, checkpointMessage, entryLeafHash } from './chain.ts';
import { treeHeadFromRow, treeHeadSignedBy, type TreeHead } from './tree-head.ts';
import { KEY_ROTATION_EVENT, checkKeyRotation } from './rotation.ts';

/** The entries a Neuron writes when it starts and stops on a data directory (AuditLog.recordOwn), naming it. */
export const DATA_DIR_EVENTS = ['neuron.started', 'neuron.stopped'] as const;
const isDataDirEvent = (type: string): boolean => (DATA_DIR_EVENTS as readonly string[]).includes(type);

export interface AuditTrust {
  /** Raw base64url Ed25519 public keys trusted at the start of the log (the pinned key); rotation entries lead on from them. */
  trustedKeys: ReadonlySet<string>;
  /** Tree heads from outside the database, with where each came from (for the message). */
  heads: Array<{ head: TreeHead; source: string }>;
  /**
   * The tree-head file's newest size (0 when missing or empty) and how long a head may be missing
   * from it (audit.tree_head_file_grace_ms). Absent: the file is not compared. `scope`:
   * - `every` (SQLite: every writer keeps this one file): every database head older than the grace
   *   must be in the file;
   * - `own` (PostgreSQL: several instances, each with its own data directory and file): the head
   *   covering this data directory's own latest `neuron.started` entry (named by `dataDirId`) must
   *   be; heads other instances signed are not in this file and are not asked for.
   */
  file?: { newestSize: number; present: boolean; graceMs: number; now: number; scope: 'every' | 'own'; dataDirId?: string };
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  checkpoints: number;
  /** Tree heads checked: the database's and the outside ones. */
  treeHeads: number;
  /** First sequence number found bad (the first entry that is missing, altered or out of place). */
  firstBadSeq: number | null;
  /** The tree size of the first tree head that is unsigned, untrusted or inconsistent with the log. */
  badTreeHead: number | null;
  problem: string | null;
}

/** Rows read per page while verifying, so memory stays flat on long chains. */
const VERIFY_PAGE_SIZE = 1_000;

interface SourcedHead {
  head: TreeHead;
  source: string;
}

export async function verifyAuditLog(db: Db, trust: AuditTrust): Promise<VerifyResult> {
  const checkpoints = await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'asc').execute();
  const walker = new ChainWalker(checkpoints.map((c) => c.seq));
  const frontier = Frontier.empty();
  const outside = [...trust.heads].sort((a, b) => a.head.tree_size - b.head.tree_size);
  let checkedHeads = 0;
  let lastGoodSize = 0;
  const trail = new LogTrail(trust);
  const result = (ok: boolean, firstBadSeq: number | null, badTreeHead: number | null, problem: string | null): VerifyResult => ({
    ok,
    entries: walker.count,
    checkpoints: checkpoints.length,
    treeHeads: checkedHeads,
    firstBadSeq,
    badTreeHead,
    problem,
  });

  /** Checks one head whose size the tree has just reached; a failure message or null. */
  const checkHead = ({ head, source }: SourcedHead): string | null => {
    checkedHeads += 1;
    if (!treeHeadSignedBy(head, trail.currentKeys)) {
      return `the tree head of size ${head.tree_size} in ${source} is not signed by a trusted organization key`;
    }
    if (frontier.root().toString('hex') !== head.root_hash) {
      return `the log is not consistent with the tree head of size ${head.tree_size} in ${source}: an entry from ${lastGoodSize + 1} to ${head.tree_size} was changed, removed or inserted`;
    }
    lastGoodSize = head.tree_size;
    return null;
  };

  let databaseHeads = await headsAfter(db, 0);
  let latestDatabaseHead = 0;
  let firstDatabaseHeadBeyondFile: TreeHead | null = null;
  for (let after = 0; ; ) {
    const page = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>', after)
      .orderBy('seq', 'asc')
      .limit(VERIFY_PAGE_SIZE)
      .execute();
    for (const entry of page) {
      const problem = walker.push(entry);
      if (problem) return result(false, problem.seq, null, problem.message);
      const trailProblem = trail.see(entry);
      if (trailProblem) return result(false, entry.seq, null, trailProblem);
      frontier.append(entryLeafHash(entry));
      while (databaseHeads.length > 0 && databaseHeads[0]!.tree_size <= frontier.size) {
        const head = databaseHeads.shift()!;
        if (head.tree_size < frontier.size) continue; // unreachable: sizes ascend and the tree grows by one
        latestDatabaseHead = head.tree_size;
        if (firstDatabaseHeadBeyondFile === null && head.tree_size > (trust.file?.newestSize ?? Infinity))
          firstDatabaseHeadBeyondFile = head;
        const failure = checkHead({ head, source: 'the database' });
        if (failure) return result(false, lastGoodSize + 1, head.tree_size, failure);
        if (databaseHeads.length === 0) databaseHeads = await headsAfter(db, head.tree_size);
      }
      while (outside.length > 0 && outside[0]!.head.tree_size === frontier.size) {
        const failure = checkHead(outside.shift()!);
        if (failure) return result(false, lastGoodSize + 1, frontier.size, failure);
      }
    }
    if (page.length < VERIFY_PAGE_SIZE) break;
    after = page[page.length - 1]!.seq;
  }

  const beyond = outside[0] ?? (databaseHeads[0] ? { head: databaseHeads[0], source: 'the database' } : undefined);
  if (beyond !== undefined) {
    checkedHeads += 1;
    const failure = headBeyondLog(beyond, trail, walker.count);
    return result(false, failure.seq, failure.head, failure.problem);
  }
  const fileProblem = checkFileKeptUp(trust, firstDatabaseHeadBeyondFile);
  if (fileProblem) return result(false, null, firstDatabaseHeadBeyondFile!.tree_size, fileProblem);
  const ownProblem = checkOwnEntryKept(trust, trail.lastOwnEntry);
  if (ownProblem) return result(false, null, null, ownProblem);
  if (walker.count > latestDatabaseHead) {
    return result(
      false,
      latestDatabaseHead + 1,
      null,
      `entries ${latestDatabaseHead + 1} to ${walker.count} are not covered by any signed tree head in the database (tree heads removed, or entries added behind the Neuron's back)`,
    );
  }

  const checkpointFailure = badCheckpoint(checkpoints, trail, walker);
  if (checkpointFailure) return result(false, checkpointFailure.seq, checkpointFailure.head, checkpointFailure.problem);
  return result(true, null, null, null);
}

/** Where verification failed: the first bad entry, the bad tree head's size, and why. */
interface VerifyFailure {
  seq: number | null;
  head: number | null;
  problem: string;
}

/** A tree head larger than the log: the log was truncated, unless the head itself is not trusted. */
function headBeyondLog(beyond: SourcedHead, trail: LogTrail, entries: number): VerifyFailure {
  const size = beyond.head.tree_size;
  // Beyond the log no rotation entry tells which key was current: any key trusted in it.
  if (!treeHeadSignedBy(beyond.head, trail.everTrusted)) {
    return {
      seq: null,
      head: size,
      problem: `the tree head of size ${size} in ${beyond.source} is not signed by a trusted organization key`,
    };
  }
  return {
    seq: entries + 1,
    head: size,
    problem: `entries ${entries + 1} to ${size} are missing: the tree head of size ${size} in ${beyond.source} covers them (the log was truncated)`,
  };
}

/** The first checkpoint that is not signed by a trusted key, names entries that are missing, or does not match its entry. */
function badCheckpoint(checkpoints: AuditCheckpointsTable[], trail: LogTrail, walker: ChainWalker): VerifyFailure | null {
  for (const checkpoint of checkpoints) {
    if (
      !trail.everTrusted.has(checkpoint.public_key) ||
      !verifyOrganizationSignature(checkpoint.public_key, checkpointMessage(checkpoint), checkpoint.signature)
    ) {
      return { seq: checkpoint.seq, head: null, problem: `checkpoint at entry ${checkpoint.seq} has an invalid signature` };
    }
    if (checkpoint.seq > walker.count) {
      return {
        seq: walker.count + 1,
        head: null,
        problem: `entries ${walker.count + 1} to ${checkpoint.seq} were signed in a checkpoint but are missing`,
      };
    }
    if (walker.hashAt(checkpoint.seq) !== checkpoint.head_hash) {
      return { seq: checkpoint.seq, head: null, problem: `entry ${checkpoint.seq} does not match its signed checkpoint` };
    }
  }
  return null;
}

/**
 * What the verifier learns from the entries as it reads them in order: the key trusted at this
 * place (rotation entries move it, ./rotation.ts), every key trusted anywhere in the log, and
 * this data directory's own latest start or stop entry (the PostgreSQL file check).
 */
class LogTrail {
  currentKeys: ReadonlySet<string>;
  readonly everTrusted: Set<string>;
  lastOwnEntry: { seq: number; occurred_at: string; event_type: string } | null = null;
  readonly #ownId: string | undefined;

  constructor(trust: AuditTrust) {
    this.currentKeys = trust.trustedKeys;
    this.everTrusted = new Set(trust.trustedKeys);
    this.#ownId = trust.file?.scope === 'own' ? trust.file.dataDirId : undefined;
  }

  /** Takes in one verified entry; a problem message when it is a rotation that does not verify. */
  see(entry: { seq: number; occurred_at: string; event_type: string; details: string }): string | null {
    if (entry.event_type === KEY_ROTATION_EVENT) {
      const rotation = checkKeyRotation(entry.details, this.currentKeys);
      if ('problem' in rotation) return `entry ${entry.seq} records a key rotation that does not verify: ${rotation.problem}`;
      this.currentKeys = new Set([rotation.newPublicKey]);
      this.everTrusted.add(rotation.newPublicKey);
    }
    if (this.#ownId !== undefined && isDataDirEvent(entry.event_type) && entry.details.includes(this.#ownId)) this.lastOwnEntry = entry;
    return null;
  }
}

/** A database head long signed but absent from the tree-head file: the file was deleted or rolled back. */
function checkFileKeptUp(trust: AuditTrust, beyond: TreeHead | null): string | null {
  const file = trust.file;
  if (file === undefined || file.scope !== 'every' || beyond === null) return null;
  const age = file.now - Date.parse(beyond.timestamp);
  // At least the grace (not more than it): a grace of 0 asks for every head, whatever the clock's resolution.
  if (!(age >= file.graceMs)) return null;
  const seconds = Math.round(file.graceMs / 1000);
  return file.present
    ? `the tree-head file ends at size ${file.newestSize}, but the database holds a tree head of size ${beyond.tree_size} signed more than ${seconds} s ago: the file was rolled back (or the Neuron was killed before writing it and has not started since)`
    : `the tree-head file is missing, but the database holds tree heads signed more than ${seconds} s ago: the file was deleted, or this data directory does not belong to this database`;
}

/**
 * PostgreSQL: this data directory's Neuron wrote its latest start or stop entry and sealed it
 * itself, so the file must hold a head at least that large once the grace has passed.
 */
function checkOwnEntryKept(trust: AuditTrust, own: { seq: number; occurred_at: string; event_type: string } | null): string | null {
  const file = trust.file;
  if (file === undefined || file.scope !== 'own' || own === null || own.seq <= file.newestSize) return null;
  if (!(file.now - Date.parse(own.occurred_at) >= file.graceMs)) return null;
  const seconds = Math.round(file.graceMs / 1000);
  const what = `the Neuron on this data directory wrote entry ${own.seq} (${own.event_type}) more than ${seconds} s ago and kept the tree head covering it`;
  return file.present
    ? `the tree-head file ends at size ${file.newestSize}, but ${what}: the file was rolled back`
    : `the tree-head file is missing, but ${what}: the file was deleted`;
}

async function headsAfter(db: Db, size: number): Promise<TreeHead[]> {
  const rows = await db
    .selectFrom('audit_tree_heads')
    .selectAll()
    .where('tree_size', '>', size)
    .orderBy('tree_size', 'asc')
    .limit(VERIFY_PAGE_SIZE)
    .execute();
  return rows.map(treeHeadFromRow);
}
