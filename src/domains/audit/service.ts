/**
 * The audit log service: appends inside the caller's transaction (so an event is written exactly
 * when the change it describes is), signs checkpoints of the chain head, and verifies the whole
 * chain.
 */
import type { Logger } from 'pino';
import type { Db, Storage } from '../../foundation/storage/index.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import { Statement } from '../../foundation/storage/statements.ts';
import type { OrganizationKey } from '../../foundation/organization/keys.ts';
import { createHash } from 'node:crypto';
import { leafHash } from 'neuron-careagent-client/protocol';
import {
  GENESIS_HASH,
  canonicalJson,
  checkpointMessage,
  entryCanonicalWithCanonicalDetails,
  sanitizeDetails,
  type AuditEntry,
} from './chain.ts';
import { AuditTree, latestTreeHead, type ReceiptTicket } from './tree.ts';
import type { TreeHead } from './tree-head.ts';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { TREE_HEADS_FILE, readPinnedKey, readTreeHeadsFile, trustedKeys } from './outside.ts';
import { type DATA_DIR_EVENTS, verifyAuditLog, type AuditTrust, type VerifyResult } from './verify.ts';

export type { VerifyResult, AuditTrust } from './verify.ts';

export interface AuditEvent {
  /** Dotted event name, for example `handshake.completed` or `api_key.created`. */
  type: string;
  /** Who caused it: `system`, `cli`, `api-key:<label>`, `patient:<agent id>`, … */
  actor: string;
  details?: Record<string, unknown>;
}

/** The chain head: one probe of the primary key's end. Every handshake appends, so both are plain SQL (../storage/statements.ts). */
const READ_HEAD = new Statement('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
const INSERT_ENTRY = new Statement(
  'INSERT INTO audit_log (seq, occurred_at, event_type, actor, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
);

export interface AuditLogOptions {
  storage: Storage;
  /** Signs the tree heads (and the checkpoints). */
  key: OrganizationKey;
  logger: Logger;
  /** The data directory: where the pinned key and the tree-head file are (verify). Absent: verify needs `trust` given. */
  dataDir?: string;
  /** audit.tree_head_file_grace_ms for verify (see AuditTrust.file). */
  treeHeadFileGraceMs?: number;
  /** Told of every tree head sealed, after its commit (the tree-head file). */
  onTreeHead?: (head: TreeHead) => void;
}

export class AuditLog {
  readonly tree: AuditTree;

  readonly #storage: Storage;
  readonly #key: OrganizationKey;
  readonly #logger: Logger;
  readonly #options: AuditLogOptions;

  constructor(options: AuditLogOptions) {
    const { storage, key } = options;
    this.#storage = storage;
    this.#key = key;
    this.#logger = options.logger;
    this.#options = options;
    this.tree = new AuditTree({ storage, key, ...(options.onTreeHead ? { onSealed: options.onTreeHead } : {}) });
  }

  /**
   * Appends within an open storage transaction; the caller's commit makes it durable, and seals
   * it under a signed tree head just before (AuditTree). `ticket`, when given, receives that tree
   * head and the entry's inclusion proof (a receipt) by the time the commit resolved.
   */
  async append(trx: Db, event: AuditEvent, now: number = Date.now(), ticket?: ReceiptTicket): Promise<AuditEntry> {
    await this.#storage.lock(trx, 'audit_chain');
    // Read inside the locked transaction (never cached): other processes append to the same chain.
    const head = (await READ_HEAD.execute<{ seq: number; hash: string }>(trx, [])).rows[0];
    const entryFields = {
      seq: (head?.seq ?? 0) + 1,
      occurred_at: isoNow(now),
      event_type: event.type,
      actor: event.actor,
      details: canonicalJson(sanitizeDetails(event.details ?? {})),
      prev_hash: head?.hash ?? GENESIS_HASH,
    };
    const canonicalText = entryCanonicalWithCanonicalDetails(entryFields);
    const canonical = Buffer.from(canonicalText);
    if (ticket !== undefined) ticket.entryText = canonicalText;
    const entry = { ...entryFields, hash: createHash('sha256').update(canonical).digest('hex') };
    await INSERT_ENTRY.execute(trx, [
      entry.seq,
      entry.occurred_at,
      entry.event_type,
      entry.actor,
      entry.details,
      entry.prev_hash,
      entry.hash,
    ]);
    this.tree.track(trx, entry, leafHash(canonical), ticket);
    return entry;
  }

  /**
   * The entries a Neuron writes when it starts and stops: `details` plus the data directory's id
   * (PinnedKey.data_dir_id), so verify on PostgreSQL knows which heads this directory's file must hold.
   */
  async recordOwn(type: (typeof DATA_DIR_EVENTS)[number], details: Record<string, unknown>): Promise<AuditEntry> {
    const dataDirId = this.#options.dataDir === undefined ? undefined : readPinnedKey(this.#options.dataDir)?.data_dir_id;
    return this.record({ type, actor: 'system', details: { ...details, ...(dataDirId ? { data_dir_id: dataDirId } : {}) } });
  }

  /** Appends in a transaction of its own. */
  async record(event: AuditEvent): Promise<AuditEntry> {
    return this.#storage.transaction((trx) => this.append(trx, event));
  }

  /** Signs the current head if it moved since the last checkpoint. */
  async checkpoint(now: number = Date.now()): Promise<{ seq: number } | null> {
    return this.#storage.transaction(async (trx) => {
      await this.#storage.lock(trx, 'audit_chain');
      const head = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
      if (!head) return null;
      const last = await trx.selectFrom('audit_checkpoints').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      if (last && last.seq >= head.seq) return null;
      const signedAt = isoNow(now);
      const signature = this.#key.sign(checkpointMessage({ seq: head.seq, head_hash: head.hash, signed_at: signedAt }));
      await trx
        .insertInto('audit_checkpoints')
        .values({ seq: head.seq, head_hash: head.hash, signed_at: signedAt, public_key: this.#key.publicKey, signature })
        .execute();
      this.#logger.debug({ seq: head.seq }, 'audit checkpoint signed');
      return { seq: head.seq };
    });
  }

  /** Verifies against the data directory's trust (the pinned key, the tree-head file), like `neuron audit verify`. */
  async verify(extraHeads: Array<{ head: TreeHead; source: string }> = []): Promise<VerifyResult> {
    if (this.#options.dataDir === undefined) throw new Error('AuditLog.verify needs the data directory');
    const file =
      this.#options.treeHeadFileGraceMs === undefined
        ? undefined
        : { graceMs: this.#options.treeHeadFileGraceMs, scope: this.#storage.dialect === 'sqlite' ? ('every' as const) : ('own' as const) };
    return verifyAuditLog(this.#storage.db, trustFromDataDir(this.#options.dataDir, extraHeads, file));
  }

  async latestTreeHead(): Promise<TreeHead | null> {
    return latestTreeHead(this.#storage.db);
  }

  async list(options: { after?: number; limit: number; eventType?: string }): Promise<AuditEntry[]> {
    let query = this.#storage.db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc').limit(options.limit);
    if (options.after !== undefined) query = query.where('seq', '>', options.after);
    if (options.eventType !== undefined) query = query.where('event_type', '=', options.eventType);
    return query.execute();
  }
}

/**
 * The trust a verifier takes from the data directory: the pinned key, the heads in the file, and
 * any more heads given (a witness's, a receipt's). Throws a TypeError naming a bad file.
 */
export function trustFromDataDir(
  dataDir: string,
  extraHeads: Array<{ head: TreeHead; source: string }> = [],
  /** audit.tree_head_file_grace_ms and the scope of the file check (AuditTrust.file); absent: the file is not compared. */
  fileCheck?: { graceMs: number; scope: 'every' | 'own' },
): AuditTrust {
  const fromFile = readTreeHeadsFile(dataDir);
  const fileHeads = fromFile.map((head) => ({ head, source: 'the tree-head file' }));
  const newestSize = fromFile.reduce((max, head) => Math.max(max, head.tree_size), 0);
  const present = existsSync(path.join(dataDir, TREE_HEADS_FILE));
  return {
    trustedKeys: trustedKeys(dataDir),
    heads: [...fileHeads, ...extraHeads],
    ...(fileCheck === undefined ? {} : { file: { newestSize, present, ...fileCheck, now: Date.now(), ...dataDirIdOf(dataDir) } }),
  };
}

function dataDirIdOf(dataDir: string): { dataDirId?: string } {
  const id = readPinnedKey(dataDir)?.data_dir_id;
  return id === undefined ? {} : { dataDirId: id };
}

/** Kept for callers of the chain-only name: the same full verification. */
export const verifyAuditChain = verifyAuditLog;
