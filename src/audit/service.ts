/**
 * The audit log service: appends inside the caller's transaction (so an event is written exactly
 * when the change it describes is), signs checkpoints of the chain head, and verifies the whole
 * chain.
 */
import type { Logger } from 'pino';
import type { Db, Storage } from '../storage/index.ts';
import { isoNow } from '../storage/index.ts';
import { Statement } from '../storage/statements.ts';
import type { OrganizationKey } from '../organization/keys.ts';
import { verifyOrganizationSignature } from '../organization/keys.ts';
import { ChainWalker, GENESIS_HASH, canonicalJson, checkpointMessage, entryHash, sanitizeDetails, type AuditEntry } from './chain.ts';

export interface AuditEvent {
  /** Dotted event name, for example `handshake.completed` or `api_key.created`. */
  type: string;
  /** Who caused it: `system`, `cli`, `api-key:<label>`, `patient:<agent id>`, … */
  actor: string;
  details?: Record<string, unknown>;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  checkpoints: number;
  /** First sequence number found bad (the first entry that is missing, altered or out of place). */
  firstBadSeq: number | null;
  problem: string | null;
}

/** The chain head: one probe of the primary key's end. Every handshake appends, so both are plain SQL (../storage/statements.ts). */
const READ_HEAD = new Statement('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
const INSERT_ENTRY = new Statement('INSERT INTO audit_log (seq, occurred_at, event_type, actor, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');

/** Rows read per page while verifying, so memory stays flat on long chains. */
const VERIFY_PAGE_SIZE = 1_000;

export class AuditLog {
  constructor(
    private readonly storage: Storage,
    private readonly key: OrganizationKey,
    private readonly logger: Logger,
  ) {}

  /** Appends within an open transaction; the caller's commit makes it durable. */
  async append(trx: Db, event: AuditEvent, now: number = Date.now()): Promise<AuditEntry> {
    await this.storage.lock(trx, 'audit_chain');
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
    const entry = { ...entryFields, hash: entryHash(entryFields) };
    await INSERT_ENTRY.execute(trx, [entry.seq, entry.occurred_at, entry.event_type, entry.actor, entry.details, entry.prev_hash, entry.hash]);
    return entry;
  }

  /** Appends in a transaction of its own. */
  async record(event: AuditEvent): Promise<AuditEntry> {
    return this.storage.transaction((trx) => this.append(trx, event));
  }

  /** Signs the current head if it moved since the last checkpoint. */
  async checkpoint(now: number = Date.now()): Promise<{ seq: number } | null> {
    return this.storage.transaction(async (trx) => {
      await this.storage.lock(trx, 'audit_chain');
      const head = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
      if (!head) return null;
      const last = await trx.selectFrom('audit_checkpoints').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      if (last && last.seq >= head.seq) return null;
      const signedAt = isoNow(now);
      const signature = this.key.sign(checkpointMessage({ seq: head.seq, head_hash: head.hash, signed_at: signedAt }));
      await trx.insertInto('audit_checkpoints').values({ seq: head.seq, head_hash: head.hash, signed_at: signedAt, public_key: this.key.publicKey, signature }).execute();
      this.logger.debug({ seq: head.seq }, 'audit checkpoint signed');
      return { seq: head.seq };
    });
  }

  async verify(): Promise<VerifyResult> {
    return verifyAuditChain(this.storage.db);
  }

  async list(options: { after?: number; limit: number; eventType?: string }): Promise<AuditEntry[]> {
    let query = this.storage.db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc').limit(options.limit);
    if (options.after !== undefined) query = query.where('seq', '>', options.after);
    if (options.eventType !== undefined) query = query.where('event_type', '=', options.eventType);
    return query.execute();
  }
}

/**
 * Verifies every entry and every checkpoint. Needs only the database: the checkpoint public keys
 * are stored beside the signatures and must also match a key the organization holds.
 */
export async function verifyAuditChain(db: Db): Promise<VerifyResult> {
  const checkpoints = await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'asc').execute();
  const knownKeys = new Set((await db.selectFrom('organization_keys').select('public_key').execute()).map((row) => row.public_key));
  const walker = new ChainWalker(checkpoints.map((c) => c.seq));
  const fail = (seq: number, problem: string): VerifyResult => ({ ok: false, entries: walker.count, checkpoints: checkpoints.length, firstBadSeq: seq, problem });

  let after = 0;
  for (;;) {
    const page = await db.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq', 'asc').limit(VERIFY_PAGE_SIZE).execute();
    for (const entry of page) {
      const problem = walker.push(entry);
      if (problem) return fail(problem.seq, problem.message);
    }
    if (page.length < VERIFY_PAGE_SIZE) break;
    after = page[page.length - 1]!.seq;
  }

  for (const checkpoint of checkpoints) {
    if (!knownKeys.has(checkpoint.public_key) || !verifyOrganizationSignature(checkpoint.public_key, checkpointMessage(checkpoint), checkpoint.signature)) {
      return fail(checkpoint.seq, `checkpoint at entry ${checkpoint.seq} has an invalid signature`);
    }
    if (checkpoint.seq > walker.count) {
      // A signed head beyond the end of the chain: entries after the last present one were removed.
      return fail(walker.count + 1, `entries ${walker.count + 1} to ${checkpoint.seq} were signed in a checkpoint but are missing`);
    }
    if (walker.hashAt(checkpoint.seq) !== checkpoint.head_hash) {
      return fail(checkpoint.seq, `entry ${checkpoint.seq} does not match its signed checkpoint`);
    }
  }
  return { ok: true, entries: walker.count, checkpoints: checkpoints.length, firstBadSeq: null, problem: null };
}
