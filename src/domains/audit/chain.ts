/**
 * The audit hash chain, as pure functions. Each entry's hash is SHA-256 over the RFC 8785
 * canonical JSON of its fields including the previous entry's hash, so changing, deleting or
 * reordering any entry breaks every hash after it. Checkpoints sign the chain head with the
 * organization key, so even a rewrite of the whole chain from some point is detected up to the
 * last checkpoint.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { leafHash } from 'neuron-careagent-client/protocol';

// The package is CommonJS whose declaration file claims a default export; at run time the module
// itself is the function.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/** The previous hash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEntryFields {
  seq: number;
  occurred_at: string;
  event_type: string;
  actor: string;
  /** Canonical JSON text of the details object. */
  details: string;
  prev_hash: string;
}

export interface AuditEntry extends AuditEntryFields {
  hash: string;
}

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value cannot be represented as canonical JSON');
  return text;
}

/**
 * The entry's RFC 8785 canonical JSON (without its own hash): what `hash` is the SHA-256 of, and
 * the leaf of the audit Merkle tree (leaf hash SHA-256(0x00 || these UTF-8 bytes), docs/protocol.md).
 */
export function entryCanonical(fields: AuditEntryFields): string {
  return canonicalJson({
    seq: fields.seq,
    occurred_at: fields.occurred_at,
    event_type: fields.event_type,
    actor: fields.actor,
    details: JSON.parse(fields.details) as unknown,
    prev_hash: fields.prev_hash,
  });
}

/**
 * `entryCanonical` for fields whose `details` is already canonical JSON text, as AuditLog.append
 * writes it: the same bytes put together directly, without parsing the details back and
 * canonicalising the whole entry again (every handshake appends one). RFC 8785 orders the keys by
 * UTF-16 code units (actor, details, event_type, occurred_at, prev_hash, seq) and writes strings
 * and integers as JSON.stringify does. Verification keeps `entryCanonical`, which accepts any text.
 */
export function entryCanonicalWithCanonicalDetails(fields: AuditEntryFields): string {
  return `{"actor":${JSON.stringify(fields.actor)},"details":${fields.details},"event_type":${JSON.stringify(fields.event_type)},"occurred_at":${JSON.stringify(fields.occurred_at)},"prev_hash":${JSON.stringify(fields.prev_hash)},"seq":${JSON.stringify(fields.seq)}}`;
}

export function entryHash(fields: AuditEntryFields): string {
  return createHash('sha256').update(entryCanonical(fields)).digest('hex');
}

/** The entry's Merkle leaf hash (RFC 9162: SHA-256(0x00 || entry)). */
export function entryLeafHash(fields: AuditEntryFields): Buffer {
  return leafHash(Buffer.from(entryCanonical(fields)));
}

/** The exact bytes a checkpoint signature covers. */
export function checkpointMessage(checkpoint: { seq: number; head_hash: string; signed_at: string }): Buffer {
  return Buffer.from(
    canonicalJson({
      type: 'neuron.audit_checkpoint',
      seq: checkpoint.seq,
      head_hash: checkpoint.head_hash,
      signed_at: checkpoint.signed_at,
    }),
  );
}

export type ChainProblem =
  | { kind: 'gap'; seq: number; message: string }
  | { kind: 'hash'; seq: number; message: string }
  | { kind: 'link'; seq: number; message: string };

/**
 * Walks entries in ascending seq order, one at a time, so a chain of any length is verified in
 * constant memory. Returns the first problem or null.
 */
export class ChainWalker {
  #expectedSeq = 1;
  #previousHash = GENESIS_HASH;
  /** Hash of each entry seen, only for the seqs asked about (checkpoints). */
  readonly #wanted: Map<number, string | null>;

  constructor(checkpointSeqs: Iterable<number> = []) {
    this.#wanted = new Map([...checkpointSeqs].map((seq) => [seq, null]));
  }

  get count(): number {
    return this.#expectedSeq - 1;
  }

  get headHash(): string {
    return this.#previousHash;
  }

  hashAt(seq: number): string | null {
    return this.#wanted.get(seq) ?? null;
  }

  push(entry: AuditEntry): ChainProblem | null {
    if (entry.seq !== this.#expectedSeq) {
      return { kind: 'gap', seq: this.#expectedSeq, message: `entry ${this.#expectedSeq} is missing or out of order (found ${entry.seq})` };
    }
    if (entry.prev_hash !== this.#previousHash) {
      return { kind: 'link', seq: entry.seq, message: `entry ${entry.seq} does not link to the entry before it` };
    }
    if (entryHash(entry) !== entry.hash) {
      return { kind: 'hash', seq: entry.seq, message: `entry ${entry.seq} was changed after it was written` };
    }
    if (this.#wanted.has(entry.seq)) this.#wanted.set(entry.seq, entry.hash);
    this.#previousHash = entry.hash;
    this.#expectedSeq += 1;
    return null;
  }
}

/**
 * Keys that never belong in audit details (tokens, keys' private parts, demographics). Callers
 * should not pass them at all; this is the safety net that drops them if one slips through.
 */
const FORBIDDEN_DETAIL_KEYS = new Set([
  'token',
  'bearer_token',
  'secret',
  'password',
  'private_key',
  'private_key_pkcs8',
  'api_key',
  'credential',
  'consent_token_payload',
  'consent_token_signature',
  'signed_nonce',
  'signature',
  'patient_profile',
  'profile',
  'display_name',
  'date_of_birth',
  'phone',
  'email',
  'address',
]);

export function sanitizeDetails(details: Record<string, unknown>): Record<string, unknown> {
  const clean: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(details)) {
    if (FORBIDDEN_DETAIL_KEYS.has(key) || value === undefined) continue;
    clean[key] =
      value !== null && typeof value === 'object' && !Array.isArray(value) ? sanitizeDetails(value as Record<string, unknown>) : value;
  }
  return clean;
}
