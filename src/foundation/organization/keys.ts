/**
 * The organization's Ed25519 key: signs handshake attestations, provider notices and audit
 * checkpoints. It lives in the database (not a file) so that every instance sharing a PostgreSQL
 * database signs with the same key; with SQLite the database file sits in the private data
 * directory. Created once, by `neuron init` or the first start; replaced by `neuron key rotate`
 * (src/domains/audit/rotation.ts), which leaves the old row inactive.
 *
 * What the services hold is a CurrentOrganizationKey: the active key, swapped in place when this
 * process rotates it or finds that another instance did (the audit tree reloads it when the
 * latest tree head names another key, docs/security.md "Key rotation").
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../storage/index.ts';
import { isoNow } from '../storage/index.ts';

export interface OrganizationKey {
  readonly id: string;
  /** Raw public key, base64url without padding (43 chars). */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
  readonly publicKeyObject: KeyObject;
  sign(data: Uint8Array): string;
}

/** Raw 32-byte public key of an Ed25519 KeyObject, base64url. */
export function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('not an Ed25519 key');
  return jwk.x;
}

function fromPkcs8(id: string, pkcs8Base64: string): OrganizationKey {
  const privateKey = createPrivateKey({ key: Buffer.from(pkcs8Base64, 'base64'), format: 'der', type: 'pkcs8' });
  const publicKeyObject = createPublicKey(privateKey);
  const publicKey = rawPublicKey(publicKeyObject);
  return {
    id,
    publicKey,
    privateKey,
    publicKeyObject,
    sign: (data) => sign(null, data, privateKey).toString('base64url'),
  };
}

async function readActiveKey(db: Db): Promise<OrganizationKey | null> {
  const row = await db
    .selectFrom('organization_keys')
    .selectAll()
    .where('active', '=', 1)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .executeTakeFirst();
  return row ? fromPkcs8(row.id, row.private_key_pkcs8) : null;
}

/**
 * The organization key the services sign with: the active one, replaced in place (`use`, `reload`)
 * so every holder of this object signs with the new key from then on. Each member reads the
 * current key once, so one signature never mixes two keys.
 */
export class CurrentOrganizationKey implements OrganizationKey {
  #key: OrganizationKey;

  constructor(options: { key: OrganizationKey }) {
    this.#key = options.key;
  }

  get id(): string {
    return this.#key.id;
  }
  get publicKey(): string {
    return this.#key.publicKey;
  }
  get privateKey(): KeyObject {
    return this.#key.privateKey;
  }
  get publicKeyObject(): KeyObject {
    return this.#key.publicKeyObject;
  }
  /** The key itself, fixed: for a caller that must sign several things with one key. */
  get current(): OrganizationKey {
    return this.#key;
  }

  sign(data: Uint8Array): string {
    return this.#key.sign(data);
  }

  use(key: OrganizationKey): void {
    this.#key = key instanceof CurrentOrganizationKey ? key.current : key;
  }

  /** Takes the database's active key if it is another one; true when it changed. */
  async reload(db: Db): Promise<boolean> {
    const active = await readActiveKey(db);
    if (active === null || active.id === this.#key.id) return false;
    this.#key = active;
    return true;
  }
}

export async function loadOrganizationKey(db: Db): Promise<CurrentOrganizationKey | null> {
  const key = await readActiveKey(db);
  return key ? new CurrentOrganizationKey({ key }) : null;
}

/**
 * Makes a new key the active one inside `trx` (which the caller holds the audit chain lock in):
 * the old row stays, inactive, so what it signed can still be traced to it. Returns both.
 */
export async function replaceActiveOrganizationKey(trx: Db): Promise<{ previous: OrganizationKey; next: OrganizationKey }> {
  const previous = await readActiveKey(trx);
  if (previous === null) throw new Error('there is no active organization key to rotate; run neuron init first');
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  const next = fromPkcs8(randomUUID(), pkcs8);
  await trx.updateTable('organization_keys').set({ active: 0 }).where('active', '=', 1).execute();
  await trx
    .insertInto('organization_keys')
    .values({ id: next.id, public_key: next.publicKey, private_key_pkcs8: pkcs8, created_at: isoNow(), active: 1 })
    .execute();
  return { previous, next };
}

/**
 * Loads the active key, creating it on first use. Safe to race (instances starting at once on an
 * empty database): a unique index allows one active key, the first insert wins, and the others
 * insert nothing and load the winner's.
 */
export async function ensureOrganizationKey(db: Db): Promise<{ key: CurrentOrganizationKey; created: boolean }> {
  const existing = await loadOrganizationKey(db);
  if (existing) return { key: existing, created: false };
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  const id = randomUUID();
  await db
    .insertInto('organization_keys')
    .values({ id, public_key: rawPublicKey(createPublicKey(privateKey)), private_key_pkcs8: pkcs8, created_at: isoNow(), active: 1 })
    // The conflict target is the partial index organization_keys_one_active; its predicate must be
    // the literal text of the index's WHERE clause.
    .onConflict((conflict) => conflict.column('active').where(sql<boolean>`active = 1`).doNothing())
    .execute();
  const key = await loadOrganizationKey(db);
  if (!key) throw new Error('organization key was not stored');
  return { key, created: key.id === id };
}

/** Verifies an organization signature given the raw base64url public key. */
export function verifyOrganizationSignature(publicKey: string, data: Uint8Array, signature: string): boolean {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
    return verify(null, data, key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}
