/**
 * The `settings` table: small name/value state (name, value, updated_at) for parts that need a
 * few named values and no table of their own. No domain owns it: each user keeps to names under
 * its own prefix (`registry.` for the registry integration, src/network/registry/store.ts;
 * `providers.seeded.` for the roster's config seeds, src/domains/providers/service.ts), and reads
 * and writes them only through these functions, on the caller's handle or open transaction.
 */
import type { Db } from './types.ts';

/** The stored value, or null when the name is not set. */
export async function readSetting(db: Db, name: string): Promise<string | null> {
  const row = await db.selectFrom('settings').select('value').where('name', '=', name).executeTakeFirst();
  return row?.value ?? null;
}

/** Every setting whose name starts with `prefix` (no LIKE wildcards in it), as name → value. */
export async function readSettingsUnder(db: Db, prefix: string): Promise<Map<string, string>> {
  const rows = await db.selectFrom('settings').select(['name', 'value']).where('name', 'like', `${prefix}%`).execute();
  return new Map(rows.map((row) => [row.name, row.value]));
}

/** Sets the value, creating the setting or replacing it. */
export async function writeSetting(db: Db, name: string, value: string, at: string): Promise<void> {
  await db
    .insertInto('settings')
    .values({ name, value, updated_at: at })
    .onConflict((conflict) =>
      conflict.column('name').doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), updated_at: eb.ref('excluded.updated_at') })),
    )
    .execute();
}

/** Creates the setting; fails with the database's unique violation when the name is already set. */
export async function insertSetting(db: Db, name: string, value: string, at: string): Promise<void> {
  await db.insertInto('settings').values({ name, value, updated_at: at }).execute();
}

/** Deletes the named settings and every setting whose name starts with one of `prefixes` (no LIKE wildcards in them). */
export async function deleteSettings(db: Db, names: readonly string[], prefixes: readonly string[]): Promise<void> {
  if (names.length === 0 && prefixes.length === 0) return;
  await db
    .deleteFrom('settings')
    .where((eb) => eb.or([...names.map((name) => eb('name', '=', name)), ...prefixes.map((prefix) => eb('name', 'like', `${prefix}%`))]))
    .execute();
}
