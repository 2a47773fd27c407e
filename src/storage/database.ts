/**
 * The storage interface: one kysely query builder over either the embedded SQLite file (default)
 * or PostgreSQL (`storage.url = postgres://…`). Domain stores only ever see `Db` (a Kysely
 * instance or a transaction) and the few dialect-specific operations below, so the same store
 * code and the same test suite run on both.
 */
import { mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Migration, type MigrationProvider } from 'kysely';
import type { Database } from './tables.ts';
import * as sqlite001 from './migrations/sqlite/001_initial.ts';
import * as postgres001 from './migrations/postgres/001_initial.ts';

export type Db = Kysely<Database>;
export type Dialect = 'sqlite' | 'postgres';

export interface StorageOptions {
  /** Empty for SQLite; a postgres:// URL for PostgreSQL. */
  url: string;
  sqliteFile: string;
  sqliteSynchronous: 'FULL' | 'NORMAL' | 'EXTRA';
  busyTimeoutMs: number;
  poolMax: number;
}

/** Named application locks; each maps to a stable PostgreSQL advisory lock key. */
export type LockName = 'audit_chain';
const ADVISORY_LOCK_KEYS: Record<LockName, number> = {
  // Arbitrary but fixed: the same number on every instance serialises audit appends.
  audit_chain: 0x4e_41_01,
};

export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

export interface Storage {
  readonly db: Db;
  readonly dialect: Dialect;
  /** Human description without secrets, for logs and `neuron status`. */
  readonly description: string;
  /**
   * Runs `work` in one transaction. SQLite takes the write lock up front (BEGIN IMMEDIATE) so that
   * two processes never deadlock upgrading a read lock; PostgreSQL uses READ COMMITTED plus the
   * explicit locks below.
   */
  transaction<T>(work: (trx: Db) => Promise<T>): Promise<T>;
  /** Serialises a critical section across every instance sharing the database (inside a transaction). */
  lock(trx: Db, name: LockName): Promise<void>;
  migrate(): Promise<{ applied: string[] }>;
  pendingMigrations(): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const MIGRATIONS: Record<Dialect, Record<string, Migration>> = {
  sqlite: { '001_initial': sqlite001 },
  postgres: { '001_initial': postgres001 },
};

class StaticMigrations implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations;
  }
}

export async function openStorage(options: StorageOptions): Promise<Storage> {
  return options.url === '' ? openSqlite(options) : openPostgres(options);
}

function openSqlite(options: StorageOptions): Storage {
  const directory = path.dirname(options.sqliteFile);
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    accessSync(directory, fsConstants.W_OK);
  } catch (error) {
    throw new StorageError(`data directory ${directory} is not writable (${(error as NodeJS.ErrnoException).code}); fix its permissions or set data_dir to a writable directory`, { cause: error });
  }
  let connection: BetterSqlite3.Database;
  try {
    connection = new BetterSqlite3(options.sqliteFile, { timeout: options.busyTimeoutMs });
    connection.pragma('journal_mode = WAL');
    // FULL makes each commit durable across power loss in WAL mode (docs/configuration.md).
    connection.pragma(`synchronous = ${options.sqliteSynchronous}`);
    connection.pragma('foreign_keys = ON');
    // Reading one page proves the file really is a SQLite database before anything else runs.
    connection.prepare('SELECT count(*) AS n FROM sqlite_master').get();
  } catch (error) {
    throw new StorageError(`cannot open the database ${options.sqliteFile}: ${(error as Error).message}; if the file is corrupted, restore it from a backup (docs/deployment.md) or move it aside to start afresh`, { cause: error });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: connection }) });
  return buildStorage(db, 'sqlite', `SQLite ${options.sqliteFile}`, {
    begin: sql`BEGIN IMMEDIATE`,
    lock: async () => {
      // BEGIN IMMEDIATE already holds the single writer lock for the whole file.
    },
    close: async () => {
      await db.destroy();
    },
  });
}

function openPostgres(options: StorageOptions): Storage {
  // BIGINT columns (sequence numbers) come back as strings by default; they stay far below 2^53.
  pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolMax });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const url = new URL(options.url);
  return buildStorage(db, 'postgres', `PostgreSQL ${url.hostname}:${url.port || 5432}${url.pathname}`, {
    begin: sql`BEGIN`,
    lock: async (trx, name) => {
      await sql`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEYS[name]})`.execute(trx);
    },
    close: async () => {
      await db.destroy();
    },
  });
}

interface DialectOps {
  begin: ReturnType<typeof sql>;
  lock: (trx: Db, name: LockName) => Promise<void>;
  close: () => Promise<void>;
}

function buildStorage(db: Db, dialect: Dialect, description: string, ops: DialectOps): Storage {
  const migrator = new Migrator({ db, provider: new StaticMigrations(MIGRATIONS[dialect]) });
  let closed = false;
  return {
    db,
    dialect,
    description,
    async transaction(work) {
      return db.connection().execute(async (connection) => {
        await ops.begin.execute(connection);
        try {
          const result = await work(connection);
          await sql`COMMIT`.execute(connection);
          return result;
        } catch (error) {
          await sql`ROLLBACK`.execute(connection).catch(() => undefined);
          throw error;
        }
      });
    },
    lock: ops.lock,
    async migrate() {
      const { error, results } = await migrator.migrateToLatest();
      if (error) throw new StorageError(`database migration failed: ${(error as Error).message}`, { cause: error });
      return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
    },
    async pendingMigrations() {
      const migrations = await migrator.getMigrations();
      return migrations.filter((m) => m.executedAt === undefined).map((m) => m.name);
    },
    async ping() {
      await sql`SELECT 1`.execute(db);
    },
    async close() {
      if (closed) return;
      closed = true;
      await ops.close();
    },
  };
}

/** The current time as the portable column format. */
export function isoNow(now: number = Date.now()): string {
  return new Date(now).toISOString();
}
