/**
 * Portable text matching and JSON field access for stores that only hold a `Db`.
 *
 * - `containsInsensitive` is a case-insensitive substring test in which `%`, `_` and `\` in the
 *   searched text are matched literally on both dialects. (SQLite's LIKE has no escape character
 *   unless the statement names one, PostgreSQL's defaults to backslash; naming it with ESCAPE
 *   makes both behave alike.) Case folding is Unicode-aware on both: PostgreSQL's lower() follows
 *   the database's locale, and openStorage gives SQLite a lower() with JavaScript's case mapping
 *   (SQLite's own folds only ASCII).
 * - `jsonTextField` reads one top-level text field of a JSON text column, so a search looks at a
 *   value and never at key names or other fields.
 */
import { PostgresAdapter, sql, type Expression, type RawBuilder } from 'kysely';
import type { Db, Dialect } from './types.ts';

/** The dialect behind a Db (a Kysely instance, a transaction, or a connection-bound handle). */
export function dialectOf(db: Db): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/** The LIKE pattern for "contains `text`", lower-cased, with every wildcard escaped by `\`. */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** `lower(expression) LIKE '%text%' ESCAPE '\'`, with `text` bound as a parameter. */
export function containsInsensitive(expression: Expression<string | null>, text: string): RawBuilder<boolean> {
  return sql<boolean>`lower(${expression}) LIKE ${containsPattern(text)} ESCAPE '\\'`;
}

/** Top-level keys only: letters, digits and underscores, so a key can never change the query. */
const JSON_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * The text value of `key` in a JSON object stored as text, or NULL when the column is NULL or the
 * key is absent. The key is bound as a parameter as well as checked.
 */
export function jsonTextField(db: Db, column: Expression<string | null>, key: string): RawBuilder<string | null> {
  if (!JSON_KEY.test(key)) throw new RangeError(`not a plain JSON key: ${key}`);
  return dialectOf(db) === 'postgres'
    ? sql<string | null>`(${column}::jsonb ->> ${key}::text)`
    : sql<string | null>`json_extract(${column}, ${`$.${key}`})`;
}
