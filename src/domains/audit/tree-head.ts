/**
 * Signed tree heads of the audit log's Merkle tree (docs/protocol.md "Audit tree heads"): the
 * organization key's statement that the log had `tree_size` entries whose RFC 9162 root is
 * `root_hash`. Pure: the bytes signed, signing, checking, and the JSON form served by
 * `GET /v1/audit/tree-head`, kept in `audit-tree-heads.log` and given to `neuron audit verify
 * --tree-head`.
 *
 * The signature covers the RFC 8785 canonical JSON of
 *   { "key_id", "root_hash", "timestamp", "tree_size", "type": "neuron.audit_tree_head" }
 * (keys sorted, no whitespace), UTF-8, Ed25519 by the key whose raw public key is `key.public_key`.
 */
import { verifyOrganizationSignature, type OrganizationKey } from '../../foundation/organization/keys.ts';
import { canonicalJson } from './chain.ts';

export const TREE_HEAD_TYPE = 'neuron.audit_tree_head';

export interface TreeHead {
  tree_size: number;
  /** Lowercase hex SHA-256 root (RFC 9162 MTH). */
  root_hash: string;
  /** ISO-8601 UTC with milliseconds, when it was signed. */
  timestamp: string;
  key: { id: string; public_key: string };
  /** base64url Ed25519 signature over treeHeadMessage(). */
  signature: string;
}

/** The exact bytes a tree head's signature covers. */
export function treeHeadMessage(head: { tree_size: number; root_hash: string; timestamp: string; key_id: string }): Buffer {
  return Buffer.from(
    canonicalJson({
      type: TREE_HEAD_TYPE,
      tree_size: head.tree_size,
      root_hash: head.root_hash,
      timestamp: head.timestamp,
      key_id: head.key_id,
    }),
  );
}

export function signTreeHead(key: OrganizationKey, fields: { tree_size: number; root_hash: string; timestamp: string }): TreeHead {
  const signature = key.sign(treeHeadMessage({ ...fields, key_id: key.id }));
  return { ...fields, key: { id: key.id, public_key: key.publicKey }, signature };
}

/** True when the signature is valid and made by one of `trustedKeys` (raw base64url public keys). */
export function treeHeadSignedBy(head: TreeHead, trustedKeys: ReadonlySet<string>): boolean {
  if (!trustedKeys.has(head.key.public_key)) return false;
  return verifyOrganizationSignature(head.key.public_key, treeHeadMessage({ ...head, key_id: head.key.id }), head.signature);
}

/** The database row form (migration 004) and back. */
export function treeHeadFromRow(row: {
  tree_size: number;
  root_hash: string;
  timestamp: string;
  key_id: string;
  public_key: string;
  signature: string;
}): TreeHead {
  return {
    tree_size: row.tree_size,
    root_hash: row.root_hash,
    timestamp: row.timestamp,
    key: { id: row.key_id, public_key: row.public_key },
    signature: row.signature,
  };
}

export function treeHeadToRow(head: TreeHead): {
  tree_size: number;
  root_hash: string;
  timestamp: string;
  key_id: string;
  public_key: string;
  signature: string;
} {
  return {
    tree_size: head.tree_size,
    root_hash: head.root_hash,
    timestamp: head.timestamp,
    key_id: head.key.id,
    public_key: head.key.public_key,
    signature: head.signature,
  };
}

/**
 * Reads a tree head from untrusted JSON (a witness's file, a receipt): the shape only; the
 * signature and the consistency are the verifier's business. Throws a TypeError saying what is wrong.
 */
export function parseTreeHead(value: unknown): TreeHead {
  const v = value as Partial<TreeHead> | null;
  const fail = (what: string): never => {
    throw new TypeError(`not a tree head: ${what}`);
  };
  if (v === null || typeof v !== 'object') return fail('expected a JSON object');
  if (!Number.isSafeInteger(v.tree_size) || (v.tree_size as number) < 1) fail('tree_size must be a positive integer');
  if (typeof v.root_hash !== 'string' || !/^[0-9a-f]{64}$/.test(v.root_hash)) fail('root_hash must be 64 lowercase hex digits');
  if (typeof v.timestamp !== 'string') fail('timestamp must be a string');
  if (typeof v.signature !== 'string' || !/^[A-Za-z0-9_-]+$/.test(v.signature)) fail('signature must be base64url');
  const key = v.key as { id?: unknown; public_key?: unknown } | undefined;
  if (key === undefined || typeof key.id !== 'string' || typeof key.public_key !== 'string') fail('key must hold id and public_key');
  return {
    tree_size: v.tree_size!,
    root_hash: v.root_hash!,
    timestamp: v.timestamp!,
    key: { id: key!.id as string, public_key: key!.public_key as string },
    signature: v.signature!,
  };
}
