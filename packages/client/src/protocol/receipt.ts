/**
 * Audit receipts (docs/protocol.md "Audit receipts"): the evidence, carried next to a
 * relationship attestation, that the Neuron's transparency log holds the relationship's
 * `handshake.completed` entry. Pure functions over the RFC 9162 tree of ./merkle.ts; no I/O.
 *
 * Wire form (an additive `receipt` member of the attestation object):
 *   entry            the audit entry's RFC 8785 canonical JSON text (the Merkle leaf's bytes)
 *   leaf_index       the entry's index in the tree (its seq - 1)
 *   inclusion_proof  RFC 9162 PATH(leaf_index, D[0:tree_size]), lowercase hex SHA-256 each
 *   tree_head        the signed tree head sealed in the entry's own commit, exactly as
 *                    GET /v1/audit/tree-head serves heads
 * The patient keeps it; whatever the organization later does to its database, the signed head
 * and the proof show the entry was in the log, and a consistency proof shows any later head
 * still contains it.
 */
import { verify } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { decodeBase64url } from './base64url.ts';
import { ED25519_SIGNATURE_BYTES, importPublicKey } from './keys.ts';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.ts';
import { verifyAttestation, type Attestation } from './attestation.ts';
import type { SignedPayload } from './messages.ts';
import { compileCheck } from './schema-check.ts';

export const TREE_HEAD_SIGNATURE_TYPE = 'neuron.audit_tree_head';
/** The audit event a relationship's receipt proves. */
export const RECEIPT_EVENT_TYPE = 'handshake.completed';

const HexHash = Type.String({ pattern: '^[0-9a-f]{64}$' });
/** A tree of 2^63 leaves has a 63-hash path; more is never a valid proof. */
const MAX_PROOF_HASHES = 63;
/** An audit entry of a handshake is a few hundred bytes; 8 KiB bounds what a verifier parses. */
const MAX_ENTRY_CHARS = 8_192;

export const TreeHeadSchema = Type.Object({
  tree_size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  root_hash: HexHash,
  timestamp: Type.String({ maxLength: 40 }),
  key: Type.Object({ id: Type.String({ maxLength: 128 }), public_key: Type.String({ maxLength: 64 }) }),
  signature: Type.String({ maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }),
});
export type SignedTreeHead = Static<typeof TreeHeadSchema>;

export const ReceiptSchema = Type.Object({
  entry: Type.String({ minLength: 2, maxLength: MAX_ENTRY_CHARS }),
  leaf_index: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  inclusion_proof: Type.Array(HexHash, { maxItems: MAX_PROOF_HASHES }),
  tree_head: TreeHeadSchema,
});
export type Receipt = Static<typeof ReceiptSchema>;

/** An attestation as handshake.complete and the provider notice carry it: with its receipt. */
export type AttestationWithReceipt = SignedPayload & { receipt?: Receipt };

/** The audit entry a receipt's leaf holds (docs/protocol.md). */
export interface ReceiptEntry {
  seq: number;
  occurred_at: string;
  event_type: string;
  actor: string;
  details: Record<string, unknown>;
  prev_hash: string;
}

export type ReceiptFailure =
  | 'MISSING'
  | 'MALFORMED'
  | 'UNTRUSTED_KEY'
  | 'INVALID_SIGNATURE'
  | 'NOT_INCLUDED'
  | 'ENTRY_MISMATCH'
  | 'INCONSISTENT';

export class ReceiptError extends Error {
  readonly reason: ReceiptFailure;
  constructor(reason: ReceiptFailure, message: string) {
    super(message);
    this.name = 'ReceiptError';
    this.reason = reason;
  }
}

const checkReceipt = compileCheck(ReceiptSchema);
const checkTreeHead = compileCheck(TreeHeadSchema);

/**
 * The bytes a tree head's signature covers: RFC 8785 canonical JSON of
 * {key_id, root_hash, timestamp, tree_size, type}. For these members (strings and a safe integer)
 * JSON.stringify with the keys in sorted order is exactly that form.
 */
export function treeHeadSignedBytes(head: { tree_size: number; root_hash: string; timestamp: string; key_id: string }): Buffer {
  return Buffer.from(
    JSON.stringify({
      key_id: head.key_id,
      root_hash: head.root_hash,
      timestamp: head.timestamp,
      tree_size: head.tree_size,
      type: TREE_HEAD_SIGNATURE_TYPE,
    }),
  );
}

/**
 * The organization key a verifier trusts: one raw base64url Ed25519 public key, or several (the
 * keys an organization rotated through, each known to the verifier, for example a receipt from
 * before a rotation and a tree head from after it).
 */
export type TrustedOrganizationKeys = string | Iterable<string>;

function trusts(keys: TrustedOrganizationKeys, publicKey: string): boolean {
  if (typeof keys === 'string') return keys === publicKey;
  for (const key of keys) if (key === publicKey) return true;
  return false;
}

/** Checks a tree head's shape, that it names a trusted organization key and that its signature verifies under it. */
export function verifySignedTreeHead(value: unknown, organizationPublicKey: TrustedOrganizationKeys): SignedTreeHead {
  if (!checkTreeHead(value)) throw new ReceiptError('MALFORMED', 'the tree head does not match its format');
  if (!trusts(organizationPublicKey, value.key.public_key))
    throw new ReceiptError('UNTRUSTED_KEY', 'the tree head is signed by another key than the organization key');
  const key = importPublicKey(value.key.public_key);
  const signature = decodeBase64url(value.signature, ED25519_SIGNATURE_BYTES);
  if (key === null) throw new ReceiptError('UNTRUSTED_KEY', 'the organization key is not a usable Ed25519 key');
  if (signature === null || !verify(null, treeHeadSignedBytes({ ...value, key_id: value.key.id }), key, signature)) {
    throw new ReceiptError('INVALID_SIGNATURE', 'the tree head signature does not verify');
  }
  return value;
}

function parseEntry(text: string): ReceiptEntry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ReceiptError('MALFORMED', 'the receipt entry is not JSON');
  }
  const e = value as Partial<ReceiptEntry> | null;
  if (
    e === null ||
    typeof e !== 'object' ||
    !Number.isSafeInteger(e.seq) ||
    typeof e.event_type !== 'string' ||
    typeof e.actor !== 'string' ||
    typeof e.occurred_at !== 'string' ||
    typeof e.prev_hash !== 'string' ||
    e.details === null ||
    typeof e.details !== 'object'
  ) {
    throw new ReceiptError('MALFORMED', 'the receipt entry is not an audit entry');
  }
  return e as ReceiptEntry;
}

/**
 * Verifies a receipt on its own: the tree head is signed by the organization key, and the entry's
 * leaf (SHA-256(0x00 || entry bytes)) is leaf `leaf_index` of that head's tree. Returns the entry
 * and the head, or throws ReceiptError.
 */
export function verifyReceipt(
  value: unknown,
  organizationPublicKey: TrustedOrganizationKeys,
): { entry: ReceiptEntry; treeHead: SignedTreeHead; receipt: Receipt } {
  if (value === undefined || value === null) throw new ReceiptError('MISSING', 'no receipt came with the attestation');
  if (!checkReceipt(value)) throw new ReceiptError('MALFORMED', 'the receipt does not match its format');
  const treeHead = verifySignedTreeHead(value.tree_head, organizationPublicKey);
  const entry = parseEntry(value.entry);
  if (entry.seq !== value.leaf_index + 1) throw new ReceiptError('ENTRY_MISMATCH', 'the receipt entry is not the one at its leaf index');
  const leaf = leafHash(Buffer.from(value.entry, 'utf8'));
  const proof = value.inclusion_proof.map((hex) => Buffer.from(hex, 'hex'));
  if (!verifyInclusion(value.leaf_index, treeHead.tree_size, leaf, proof, Buffer.from(treeHead.root_hash, 'hex'))) {
    throw new ReceiptError('NOT_INCLUDED', 'the inclusion proof does not lead from the entry to the signed root');
  }
  return { entry, treeHead, receipt: value };
}

/**
 * Verifies an attestation and its receipt together under the organization key: the attestation's
 * signature and fields (./attestation.ts), the receipt (verifyReceipt), and that the receipt's
 * entry records this very relationship (handshake.completed by this patient agent, for this
 * relationship and provider). Throws AttestationError or ReceiptError.
 */
export function verifyAttestationWithReceipt(
  attestation: AttestationWithReceipt,
  organizationPublicKey: string,
  expected?: Parameters<typeof verifyAttestation>[2],
): { attested: Attestation; entry: ReceiptEntry; treeHead: SignedTreeHead; receipt: Receipt } {
  const attested = verifyAttestation(attestation, organizationPublicKey, expected);
  const { entry, treeHead, receipt } = verifyReceipt(attestation.receipt, organizationPublicKey);
  const details = entry.details;
  if (
    entry.event_type !== RECEIPT_EVENT_TYPE ||
    entry.actor !== `patient:${attested.patient_agent_id}` ||
    details.relationship_id !== attested.relationship_id ||
    details.provider_npi !== attested.provider_npi
  ) {
    throw new ReceiptError('ENTRY_MISMATCH', 'the receipt entry does not record this relationship');
  }
  return { attested, entry, treeHead, receipt };
}

/**
 * Checks, later, that a newer signed tree head still contains the receipt's entry: `newerTreeHead`
 * is signed by the organization key and `proof` (RFC 9162 PROOF(receipt size, newer size), hex,
 * as GET /v1/audit/proofs/consistency serves it) shows its tree extends the receipt's. Throws
 * ReceiptError (INCONSISTENT: the organization rewrote or truncated its log).
 */
export function verifyReceiptConsistency(
  receipt: Receipt,
  newerTreeHead: unknown,
  proof: readonly string[],
  /** The keys trusted for both heads: after a rotation, the receipt's key and the newer head's (both known to the caller). */
  organizationPublicKey: TrustedOrganizationKeys = receipt.tree_head.key.public_key,
): SignedTreeHead {
  const older = verifySignedTreeHead(receipt.tree_head, organizationPublicKey);
  const newer = verifySignedTreeHead(newerTreeHead, organizationPublicKey);
  if (!Array.isArray(proof) || proof.length > MAX_PROOF_HASHES || !proof.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))) {
    throw new ReceiptError('MALFORMED', 'the consistency proof is not a list of hex SHA-256 hashes');
  }
  const ok = verifyConsistency(
    older.tree_size,
    newer.tree_size,
    Buffer.from(older.root_hash, 'hex'),
    Buffer.from(newer.root_hash, 'hex'),
    proof.map((h) => Buffer.from(h, 'hex')),
  );
  if (!ok)
    throw new ReceiptError(
      'INCONSISTENT',
      `the tree head of size ${newer.tree_size} does not extend the receipt's tree of size ${older.tree_size}`,
    );
  return newer;
}
