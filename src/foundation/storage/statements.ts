/**
 * A fast path for the few statements every handshake runs (docs/benchmarks.md, "Where the time
 * goes"): plain SQL text written once, run through the same connection and transaction as any
 * kysely query, without building and compiling a query tree per call (about 30 µs each, more than
 * the statement itself costs SQLite). The text must be SQL that SQLite and PostgreSQL both accept,
 * with `?` placeholders (and no `?` anywhere else, not even in a string literal); for PostgreSQL
 * they become `$1`, `$2`, … (once per text). Everything else
 * keeps using the query builder; the storage test suite runs these statements on both dialects.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, PostgresAdapter, type QueryResult } from 'kysely';
import type { Db } from './types.ts';

/**
 * The handles of open SQLite transactions (storage.transaction) and their connection's statement
 * cache. Inside such a transaction the handle already owns the one connection, so a Statement runs
 * its cached better-sqlite3 statement directly, as kysely's driver would, without the executor's
 * promise chain (measured: docs/benchmarks.md, "Pinned"). Only while the transaction is open: any
 * other handle (the shared `storage.db`, PostgreSQL) goes through kysely, which queues for the
 * connection.
 */
const openSqliteTransactions = new WeakMap<Db, (text: string) => BetterSqlite3.Statement>();

/**
 * The shared SQLite handle (`storage.db`) and its connection. A read on it runs its cached
 * statement directly too while the connection has no open transaction: it sees exactly the
 * committed state kysely would show it, without the executor (every handshake reads its facts so
 * before the challenge). While a transaction is open, the read queues through kysely as before, so
 * it never sees uncommitted writes.
 */
const idleSqliteHandles = new WeakMap<Db, { prepare: (text: string) => BetterSqlite3.Statement; inTransaction: () => boolean }>();

/** Called by storage.transaction (SQLite) right after BEGIN and before `work`; `release` when it ends. */
export const directSqlite = {
  hold(trx: Db, prepare: (text: string) => BetterSqlite3.Statement): void {
    openSqliteTransactions.set(trx, prepare);
  },
  release(trx: Db): void {
    openSqliteTransactions.delete(trx);
  },
  /** Called once by openStorage (SQLite) for the shared handle. */
  shareIdle(db: Db, prepare: (text: string) => BetterSqlite3.Statement, inTransaction: () => boolean): void {
    idleSqliteHandles.set(db, { prepare, inTransaction });
  },
};

/** What kysely's SQLite driver returns for the same statement. */
function runDirect<R>(statement: BetterSqlite3.Statement, parameters: readonly unknown[]): QueryResult<R> {
  if (statement.reader) return { rows: statement.all(parameters) as R[] };
  const { changes, lastInsertRowid } = statement.run(parameters);
  return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) };
}

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
    const prepare = openSqliteTransactions.get(db);
    if (prepare !== undefined) {
      try {
        return Promise.resolve(runDirect<R>(prepare(this.sqlite), parameters));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const idle = idleSqliteHandles.get(db);
    if (idle !== undefined && !idle.inTransaction()) {
      try {
        const statement = idle.prepare(this.sqlite);
        // Writes outside a transaction keep kysely's path; only reads go direct.
        if (statement.reader) return Promise.resolve({ rows: statement.all(parameters) as R[] });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    return db.executeQuery<R>(CompiledQuery.raw(postgres ? this.postgres : this.sqlite, parameters as unknown[]));
  }
}

/** True when the statement changed exactly one row (an INSERT … ON CONFLICT DO NOTHING that inserted). */
export function changedOneRow(result: QueryResult<unknown>): boolean {
  return Number(result.numAffectedRows ?? 0n) === 1;
}
