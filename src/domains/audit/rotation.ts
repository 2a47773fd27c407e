/**
 * Organization key rotation (docs/security.md "Key rotation"): the old key signs a statement
 * naming the new one, the new key signs the same statement (it vouches for continuity), and both
 * signatures are an audit entry written in the transaction that makes the new key the active one.
 * Its commit is sealed under a tree head signed by the new key already.
 *
 * A verifier starts from the key pinned in the data directory (the genesis key, never changed)
 * and follows these entries in log order: a key is trusted only because a trusted key signed it,
 * never because a row names it. A rotation entry not signed by the key trusted at its place in
 * the log is reported like any other tampering.
 *
 * The statement signed is the RFC 8785 canonical JSON of
 *   { "new_key_id", "new_public_key", "old_key_id", "old_public_key", "rotated_at",
 *     "type": "neuron.organization_key_rotation" }
 * (UTF-8, Ed25519, signatures base64url).
 */
import {
  verifyOrganizationSignature,
  replaceActiveOrganizationKey,
  type CurrentOrganizationKey,
} from '../../foundation/organization/keys.ts';
import { isoNow, type Db, type Storage } from '../../foundation/storage/index.ts';
import { canonicalJson, entryCanonical } from './chain.ts';
import { storedInclusionProof } from './tree.ts';
import { pinOrganizationKey, type PinnedKey } from './outside.ts';

export const KEY_ROTATION_EVENT = 'organization_key.rotated';
export const KEY_ROTATION_STATEMENT_TYPE = 'neuron.organization_key_rotation';

export interface KeyRotationStatement {
  old_key_id: string;
  old_public_key: string;
  new_key_id: string;
  new_public_key: string;
  rotated_at: string;
}

/** The audit entry's details: the statement and both signatures over it. */
export interface KeyRotationDetails extends KeyRotationStatement {
  old_key_signature: string;
  new_key_signature: string;
}

/** The exact bytes both rotation signatures cover. */
export function keyRotationMessage(statement: KeyRotationStatement): Buffer {
  return Buffer.from(
    canonicalJson({
      type: KEY_ROTATION_STATEMENT_TYPE,
      old_key_id: statement.old_key_id,
      old_public_key: statement.old_public_key,
      new_key_id: statement.new_key_id,
      new_public_key: statement.new_public_key,
      rotated_at: statement.rotated_at,
    }),
  );
}

/**
 * Rotates the organization key: a new active key, the rotation entry, and `key` (the services'
 * key object, the one `audit` seals with) switched to the new key before the commit's seal, so the
 * tree head covering the rotation is the new key's first signature. All or nothing.
 */
export async function rotateOrganizationKey(options: {
  storage: Storage;
  /** The AuditLog that seals with `key` (structural: this module sits below the service). */
  audit: { append(trx: Db, event: { type: string; actor: string; details?: Record<string, unknown> }): Promise<{ seq: number }> };
  key: CurrentOrganizationKey;
  actor: string;
}): Promise<{ seq: number; previous: { id: string; publicKey: string }; next: { id: string; publicKey: string } }> {
  const { storage, audit, key } = options;
  const before = key.current;
  try {
    return await storage.transaction(async (trx) => {
      await storage.lock(trx, 'audit_chain');
      const { previous, next } = await replaceActiveOrganizationKey(trx);
      const statement: KeyRotationStatement = {
        old_key_id: previous.id,
        old_public_key: previous.publicKey,
        new_key_id: next.id,
        new_public_key: next.publicKey,
        rotated_at: isoNow(),
      };
      const message = keyRotationMessage(statement);
      const details: KeyRotationDetails = {
        ...statement,
        old_key_signature: previous.sign(message),
        new_key_signature: next.sign(message),
      };
      const entry = await audit.append(trx, { type: KEY_ROTATION_EVENT, actor: options.actor, details: { ...details } });
      key.use(next);
      return {
        seq: entry.seq,
        previous: { id: previous.id, publicKey: previous.publicKey },
        next: { id: next.id, publicKey: next.publicKey },
      };
    });
  } catch (error) {
    key.use(before);
    throw error;
  }
}

/**
 * Checks a rotation entry's details (canonical JSON text) against the key trusted at its place in
 * the log: the old key must be that key, and both signatures must verify. The new public key, or
 * a message saying what is wrong.
 */
export function checkKeyRotation(detailsText: string, trustedKeys: ReadonlySet<string>): { newPublicKey: string } | { problem: string } {
  let details: Partial<KeyRotationDetails>;
  try {
    details = JSON.parse(detailsText) as Partial<KeyRotationDetails>;
  } catch {
    return { problem: 'its details are not JSON' };
  }
  const fields = ['old_key_id', 'old_public_key', 'new_key_id', 'new_public_key', 'rotated_at', 'old_key_signature', 'new_key_signature'];
  if (details === null || typeof details !== 'object' || !fields.every((f) => typeof details[f as keyof KeyRotationDetails] === 'string')) {
    return { problem: 'its details do not name both keys and both signatures' };
  }
  const full = details as KeyRotationDetails;
  if (!trustedKeys.has(full.old_public_key))
    return { problem: 'the key it rotates from is not the trusted organization key at that point' };
  const message = keyRotationMessage(full);
  if (!verifyOrganizationSignature(full.old_public_key, message, full.old_key_signature)) {
    return { problem: 'the old key did not sign it' };
  }
  if (!verifyOrganizationSignature(full.new_public_key, message, full.new_key_signature)) {
    return { problem: 'the new key did not sign it' };
  }
  return { newPublicKey: full.new_public_key };
}

/** Rotation entries read per query while following the keys (there are few). */
const ROTATION_PAGE = 100;

/** The rotation entries in log order, as stored (details as canonical text). */
export async function keyRotationEntries(db: Db): Promise<Array<{ seq: number; details: string }>> {
  const found: Array<{ seq: number; details: string }> = [];
  for (let after = 0; ; ) {
    const page = await db
      .selectFrom('audit_log')
      .select(['seq', 'details'])
      .where('event_type', '=', KEY_ROTATION_EVENT)
      .where('seq', '>', after)
      .orderBy('seq', 'asc')
      .limit(ROTATION_PAGE)
      .execute();
    found.push(...page);
    if (page.length < ROTATION_PAGE) return found;
    after = page[page.length - 1]!.seq;
  }
}

/**
 * The key a new data directory pins: the first key the log ever had (the old key of its first
 * rotation), or the active key when it was never rotated. Like every first pin it trusts the
 * database once; from then on the pin never changes.
 */
export async function genesisKey(db: Db, active: { id: string; publicKey: string }): Promise<{ id: string; publicKey: string }> {
  const first = (await keyRotationEntries(db))[0];
  if (first === undefined) return active;
  const details = JSON.parse(first.details) as Partial<KeyRotationDetails>;
  if (typeof details.old_key_id !== 'string' || typeof details.old_public_key !== 'string') return active;
  return { id: details.old_key_id, publicKey: details.old_public_key };
}

/**
 * Whether `activePublicKey` is reached from the pinned key by the rotation entries (each signed
 * by the key trusted before it). A start-up check only; `neuron audit verify` is the full one.
 */
export async function keyReachableFromPin(db: Db, pinned: PinnedKey, activePublicKey: string): Promise<boolean> {
  let trusted = pinned.public_key;
  for (const entry of await keyRotationEntries(db)) {
    const outcome = checkKeyRotation(entry.details, new Set([trusted]));
    if ('problem' in outcome) return false;
    trusted = outcome.newPublicKey;
  }
  return trusted === activePublicKey;
}

/**
 * Pins the genesis key in a data directory that has none yet and tells whether the active key is
 * reached from the pinned one (false: the database's key was replaced behind the Neuron's back,
 * or this data directory belongs to another database; its tree heads will not verify).
 */
export async function pinGenesisKey(
  db: Db,
  dataDir: string,
  active: { id: string; publicKey: string },
): Promise<{ pinned: PinnedKey; reachable: boolean }> {
  const pinned = pinOrganizationKey(dataDir, await genesisKey(db, active));
  return { pinned, reachable: await keyReachableFromPin(db, pinned, active.publicKey) };
}

/** The rotation entries up to `treeSize` as served to witnesses: canonical entry text, leaf index and inclusion proof (hex). */
export async function keyRotationProofs(
  db: Db,
  treeSize: number,
): Promise<Array<{ entry: string; leaf_index: number; inclusion_proof: string[] }>> {
  // Rotations are an operator's rare command: all of them in one answer.
  const rows = await db
    .selectFrom('audit_log')
    .selectAll()
    .where('event_type', '=', KEY_ROTATION_EVENT)
    .where('seq', '<=', treeSize)
    .orderBy('seq', 'asc')
    .execute();
  const proofs = [];
  for (const row of rows) {
    const proof = await storedInclusionProof(db, row.seq - 1, treeSize);
    proofs.push({ entry: entryCanonical(row), leaf_index: row.seq - 1, inclusion_proof: proof.map((h) => h.toString('hex')) });
  }
  return proofs;
}
