/**
 * API key rows. Only the SHA-256 digest of a key's secret is stored; the key itself is shown once.
 */
import type { Db } from '../../foundation/storage/index.ts';
import type { ApiKeysTable } from '../../foundation/storage/tables.ts';
import { decodeCursor, pageOf } from '../../foundation/storage/cursor.ts';
import type { Scope } from '../../foundation/rest/principal.ts';

export interface ApiKeyRecord {
  id: string;
  label: string;
  scopes: Scope[];
  digest: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

function toRecord(row: ApiKeysTable): ApiKeyRecord {
  return {
    id: row.id,
    label: row.label,
    scopes: JSON.parse(row.scopes) as Scope[],
    digest: row.digest,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export async function insertKey(db: Db, record: ApiKeyRecord): Promise<void> {
  await db
    .insertInto('api_keys')
    .values({
      id: record.id,
      label: record.label,
      scopes: JSON.stringify(record.scopes),
      digest: record.digest,
      created_at: record.createdAt,
      expires_at: record.expiresAt,
      revoked_at: record.revokedAt,
      last_used_at: record.lastUsedAt,
    })
    .execute();
}

/** One primary-key read; the authentication hook runs it on every request. */
export async function getKey(db: Db, id: string): Promise<ApiKeyRecord | null> {
  const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toRecord(row) : null;
}

/** Returns false when the key does not exist or was already revoked. */
export async function revokeKey(db: Db, id: string, at: string): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Keys in creation order, `limit` per page. */
export async function listKeys(
  db: Db,
  options: { after?: string; limit: number },
): Promise<{ items: ApiKeyRecord[]; next: string | null }> {
  let query = db.selectFrom('api_keys').selectAll();
  if (options.after !== undefined) {
    const [at, id] = decodeCursor(options.after, ['string', 'string']) as [string, string];
    query = query.where((eb) => eb.or([eb('created_at', '>', at), eb.and([eb('created_at', '=', at), eb('id', '>', id)])]));
  }
  const rows = await query
    .orderBy('created_at', 'asc')
    .orderBy('id', 'asc')
    .limit(options.limit + 1)
    .execute();
  return pageOf(rows, options.limit, toRecord, (last) => [last.createdAt, last.id]);
}

/**
 * Writes buffered last-use times. Never moves a time backwards, so instances flushing in any
 * order agree on the latest use.
 */
export async function recordLastUsed(db: Db, uses: ReadonlyMap<string, string>): Promise<void> {
  for (const [id, at] of uses) {
    await db
      .updateTable('api_keys')
      .set({ last_used_at: at })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
      .execute();
  }
}
