/**
 * The storage interface: one kysely query builder over either the embedded SQLite file (default,
 * ./sqlite.ts) or PostgreSQL (`storage.url = postgres://…`, ./postgres.ts); both share the
 * transactions of ./engine.ts. Domain stores only ever see `Db` (a Kysely instance or a
 * transaction) and the few dialect-specific operations, so the same store code and the same test
 * suite run on both. docs/storage.md describes both dialects.
 */
import type { Storage } from './types.ts';
import type { StorageOptions } from './options.ts';
import { openSqlite } from './sqlite.ts';
import { openPostgres } from './postgres.ts';

export { StorageError } from './failures.ts';

export type { Db, Dialect, Storage } from './types.ts';
export type { StorageOptions } from './options.ts';

export async function openStorage(options: StorageOptions): Promise<Storage> {
  return options.url === '' ? openSqlite(options) : openPostgres(options);
}

/** True when a write failed on a unique index (both dialects), so callers can answer CONFLICT. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  // 23505 is PostgreSQL's unique_violation; better-sqlite3 reports SQLITE_CONSTRAINT_UNIQUE.
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** The current time as the portable column format. */
export function isoNow(now: number = Date.now()): string {
  return new Date(now).toISOString();
}
