/**
 * A fast path for the few statements every handshake runs (docs/benchmarks.md, "Where the time
 * goes"): plain SQL text written once, run through the same connection and transaction as any
 * kysely query, without building and compiling a query tree per call (about 30 µs each, more than
 * the statement itself costs SQLite). The text must be SQL that SQLite and PostgreSQL both accept,
 * with `?` placeholders (and no `?` anywhere else, not even in a string literal); for PostgreSQL
 * they become `$1`, `$2`, … (once per text). Everything else
 * keeps using the query builder; the storage test suite runs these statements on both dialects.
 */
import { CompiledQuery, PostgresAdapter, type QueryResult } from 'kysely';
import type { Db } from './types.ts';

/** A statement in both dialects' placeholder styles, compiled once. */
export class Statement {
  readonly sqlite: string;
  readonly postgres: string;

  constructor(text: string) {
    this.sqlite = text;
    let n = 0;
    this.postgres = text.replace(/\?/g, () => `$${++n}`);
  }

  /** Runs with `parameters` in placeholder order, on `db` (a Kysely instance or an open transaction). */
  execute<R>(db: Db, parameters: readonly unknown[]): Promise<QueryResult<R>> {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    return db.executeQuery<R>(CompiledQuery.raw(postgres ? this.postgres : this.sqlite, parameters as unknown[]));
  }
}

/** True when the statement changed exactly one row (an INSERT … ON CONFLICT DO NOTHING that inserted). */
export function changedOneRow(result: QueryResult<unknown>): boolean {
  return Number(result.numAffectedRows ?? 0n) === 1;
}
