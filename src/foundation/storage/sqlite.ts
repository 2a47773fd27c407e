/**
 * The embedded SQLite file (the default storage): opened with WAL, the configured synchronous
 * level and a Unicode lower(), checked with PRAGMA quick_check, its statements cached. One
 * connection; BEGIN IMMEDIATE holds the file's single writer lock (docs/storage.md).
 */
import { mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, type SqliteDatabase, SqliteDialect, sql } from 'kysely';
import type { Database } from './tables.ts';
import type { Storage } from './types.ts';
import type { StorageOptions } from './options.ts';
// The defaults of storage.* live with their reasons in the config schema, one number each.
import {
  DEFAULT_SQLITE_COMMIT_BATCH_MAX,
  DEFAULT_SQLITE_COMMIT_DELAY_MS,
  DEFAULT_SQLITE_COMMIT_SIBLINGS,
  DEFAULT_WRITE_PROBE_INTERVAL_MS,
} from '../config/schema.ts';
import { buildStorage } from './engine.ts';
import { directSqlite } from './statements.ts';
import { describeStorageFailure, quickCheckProblems, RESTORE_ADVICE, StorageError } from './failures.ts';

/** The start-time refusal for an unusable SQLite file, with the advice its cause calls for. */
function sqliteOpenError(file: string, error: unknown): StorageError {
  return (
    describeStorageFailure(error, file) ??
    new StorageError(
      `STORAGE_UNAVAILABLE: cannot open the database ${file}: ${(error as Error).message}; if the file is damaged, ${RESTORE_ADVICE}`,
      { cause: error },
    )
  );
}

export function openSqlite(options: StorageOptions): Storage {
  const directory = path.dirname(options.sqliteFile);
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    accessSync(directory, fsConstants.W_OK);
  } catch (error) {
    throw new StorageError(
      `data directory ${directory} is not writable (${(error as NodeJS.ErrnoException).code}); fix its permissions or set data_dir to a writable directory`,
      { cause: error },
    );
  }
  let connection: BetterSqlite3.Database | undefined;
  try {
    connection = new BetterSqlite3(options.sqliteFile, { timeout: options.busyTimeoutMs });
    connection.pragma('journal_mode = WAL');
    // FULL makes each commit durable across power loss in WAL mode (docs/storage.md).
    connection.pragma(`synchronous = ${options.sqliteSynchronous}`);
    connection.pragma('foreign_keys = ON');
    // SQLite's own lower() folds only ASCII; PostgreSQL's folds every letter (É -> é). The same
    // mapping on both keeps case-insensitive searches (directory) alike (docs/storage.md).
    connection.function('lower', { deterministic: true }, (value: unknown) => {
      if (value === null) return null;
      return (typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : String(value)).toLowerCase();
    });
    // Reading one page proves the file really is a SQLite database before anything else runs.
    connection.prepare('SELECT count(*) AS n FROM sqlite_master').get();
  } catch (error) {
    connection?.close();
    throw sqliteOpenError(options.sqliteFile, error);
  }
  if (options.sqliteQuickCheck ?? true) {
    let problems: string[];
    try {
      problems = quickCheckProblems(connection);
    } catch (error) {
      connection.close();
      throw sqliteOpenError(options.sqliteFile, error);
    }
    if (problems.length > 0) {
      connection.close();
      // A few lines are enough to show the kind of damage; the whole list can run to thousands.
      const shown = problems.slice(0, 3).join('; ');
      throw new StorageError(
        `STORAGE_CORRUPT: the database ${options.sqliteFile} failed its integrity check (PRAGMA quick_check: ${shown}${problems.length > 3 ? `; ${problems.length - 3} more` : ''}); ${RESTORE_ADVICE}`,
        { code: 'STORAGE_CORRUPT' },
      );
    }
  }
  const cached = withStatementCache(connection);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached }) });
  directSqlite.shareIdle(db, cached.prepare, cached.inTransaction);
  return buildStorage(db, 'sqlite', `SQLite ${options.sqliteFile}`, {
    prepare: cached.prepare,
    writeProbeIntervalMs: options.writeProbeIntervalMs ?? DEFAULT_WRITE_PROBE_INTERVAL_MS,
    begin: CompiledQuery.raw('BEGIN IMMEDIATE'),
    commitBatchMax: options.sqliteCommitBatchMax ?? DEFAULT_SQLITE_COMMIT_BATCH_MAX,
    commitDelayMs: options.sqliteCommitDelayMs ?? DEFAULT_SQLITE_COMMIT_DELAY_MS,
    commitSiblings: options.sqliteCommitSiblings ?? DEFAULT_SQLITE_COMMIT_SIBLINGS,
    lock: async () => {
      // BEGIN IMMEDIATE already holds the single writer lock for the whole file.
    },
    migrationLock: async () => {
      // BEGIN IMMEDIATE already excludes every other writer of the file.
    },
    ping: async () => {
      await sql`SELECT 1`.execute(db);
    },
    close: async () => {
      // Queries and transactions queue for the one connection; taking it last lets every one
      // queued before close finish (better-sqlite3 would otherwise close under a transaction).
      await db
        .connection()
        .execute(async () => undefined)
        .catch(() => undefined);
      await db.destroy();
    },
  });
}

/**
 * Distinct SQL texts whose prepared statements are kept. The Neuron issues a few dozen shapes;
 * the bound keeps a caller that builds many distinct texts (IN lists of varying length) from
 * growing the cache without limit.
 */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query afresh; preparing is a measurable share of a handshake's CPU. The
 * same SQL text always compiles to the same statement (parameters are bound, never inlined), so
 * statements are reused. better-sqlite3 re-prepares a statement itself after a schema change. A
 * statement still being iterated (busy) is never handed out twice.
 */
function withStatementCache(connection: BetterSqlite3.Database): SqliteDatabase & {
  prepare: (text: string) => BetterSqlite3.Statement;
  inTransaction: () => boolean;
} {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => connection.close(),
    // Closed counts as busy: the caller then gets kysely's own error for a destroyed database.
    inTransaction: () => !connection.open || connection.inTransaction,
    prepare: (text: string) => {
      const cached = statements.get(text);
      if (cached !== undefined && !cached.busy) return cached;
      const statement = connection.prepare(text);
      if (cached === undefined && statements.size < STATEMENT_CACHE_SIZE) statements.set(text, statement);
      return statement;
    },
  };
}
