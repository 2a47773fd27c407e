/**
 * The storage interface: one kysely query builder over either the embedded SQLite file (default)
 * or PostgreSQL (`storage.url = postgres://…`). Domain stores only ever see `Db` (a Kysely
 * instance or a transaction) and the few dialect-specific operations below, so the same store
 * code and the same test suite run on both. docs/storage.md describes both dialects.
 */
import { mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
// Type only: the driver is loaded when a PostgreSQL URL is configured (not on the default SQLite), to keep it out of idle memory.
import type pg from 'pg';
import { CompiledQuery, Kysely, type SqliteDatabase, PostgresDialect, SqliteDialect, sql, type Migration } from 'kysely';
import type { Database } from './tables.ts';
import type { Db, Dialect, LockName, Storage } from './types.ts';
// The defaults of storage.* live with their reasons in the config schema, one number each.
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_SQLITE_COMMIT_BATCH_MAX, DEFAULT_WRITE_PROBE_INTERVAL_MS } from '../config/schema.ts';
import * as sqlite001 from './migrations/sqlite/001_initial.ts';
import * as postgres001 from './migrations/postgres/001_initial.ts';
import * as sqlite002 from './migrations/sqlite/002_one_active_organization_key.ts';
import * as postgres002 from './migrations/postgres/002_one_active_organization_key.ts';
import * as sqlite003 from './migrations/sqlite/003_relationships_by_patient.ts';
import * as postgres003 from './migrations/postgres/003_relationships_by_patient.ts';
import * as sqlite004 from './migrations/sqlite/004_audit_tree.ts';
import * as postgres004 from './migrations/postgres/004_audit_tree.ts';
import * as sqlite005 from './migrations/sqlite/005_roster_capabilities_and_key_blocks.ts';
import * as postgres005 from './migrations/postgres/005_roster_capabilities_and_key_blocks.ts';
import * as sqlite006 from './migrations/sqlite/006_console_operators.ts';
import * as postgres006 from './migrations/postgres/006_console_operators.ts';
import { pendingMigrations, runMigrations } from './migrate.ts';
import { directSqlite } from './statements.ts';
import { describeStorageFailure, isStorageFailure, probeWrite, quickCheckProblems, RESTORE_ADVICE, StorageError } from './failures.ts';

export { StorageError } from './failures.ts';

export type { Db, Dialect, LockName, Storage } from './types.ts';

export interface StorageOptions {
  /** Empty for SQLite; a postgres:// URL for PostgreSQL. */
  url: string;
  sqliteFile: string;
  sqliteSynchronous: 'FULL' | 'NORMAL' | 'EXTRA';
  busyTimeoutMs: number;
  poolMax: number;
  /**
   * SQLite: most units of work `groupTransaction` puts in one shared commit. Default
   * DEFAULT_SQLITE_COMMIT_BATCH_MAX.
   */
  sqliteCommitBatchMax?: number;
  /**
   * SQLite: run `PRAGMA quick_check` when opening and refuse a damaged file (StorageError with
   * code STORAGE_CORRUPT). Default true.
   */
  sqliteQuickCheck?: boolean;
  /** Shortest time between two write probes while writes fail. Default DEFAULT_WRITE_PROBE_INTERVAL_MS. */
  writeProbeIntervalMs?: number;
  /**
   * PostgreSQL: longest wait for a connection, either a new one (TCP, TLS, authentication) or a
   * free one from a busy pool. Default DEFAULT_CONNECT_TIMEOUT_MS.
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL: called when an idle pooled connection fails (server restart, failover, a firewall
   * dropping it). The pool replaces the connection by itself; this is for the log. Default: a
   * process warning.
   */
  onBackgroundError?: (error: StorageError) => void;
}

/** Idle pooled connections are closed after this long, so a quiet instance holds few server slots. */
const POOL_IDLE_TIMEOUT_MS = 30_000;

/** Named application locks; each maps to a stable PostgreSQL advisory lock key. */
const ADVISORY_LOCK_KEYS: Record<LockName | 'migrations', number> = {
  // Arbitrary but fixed: the same number on every instance serialises audit appends. Advisory
  // locks are per database (not per schema), so Neuron deployments sharing one database in
  // different schemas also share this lock; that only serialises, it never breaks anything.
  audit_chain: 0x4e_41_01,
  // Instances starting at once: one migrates, the others wait and find the work done.
  migrations: 0x4e_41_02,
};

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

const MIGRATIONS: Record<Dialect, Record<string, Migration>> = {
  sqlite: {
    '001_initial': sqlite001,
    '002_one_active_organization_key': sqlite002,
    '003_relationships_by_patient': sqlite003,
    '004_audit_tree': sqlite004,
    '005_roster_capabilities_and_key_blocks': sqlite005,
    '006_console_operators': sqlite006,
  },
  postgres: {
    '001_initial': postgres001,
    '002_one_active_organization_key': postgres002,
    '003_relationships_by_patient': postgres003,
    '004_audit_tree': postgres004,
    '005_roster_capabilities_and_key_blocks': postgres005,
    '006_console_operators': postgres006,
  },
};

export async function openStorage(options: StorageOptions): Promise<Storage> {
  return options.url === '' ? openSqlite(options) : openPostgres(options);
}

function openSqlite(options: StorageOptions): Storage {
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

/** Where a PostgreSQL URL points, without user or password, for messages and logs. */
interface PostgresTarget {
  /** `host:port/database` */
  where: string;
  /** Strings that must never appear in a message: the password, raw and decoded. */
  secrets: string[];
}

function parsePostgresUrl(raw: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // No cause: the URL parser's error carries the input, password included.
    throw new StorageError('storage.url is not a valid URL; expected postgres://user:password@host:5432/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new StorageError(
      `storage.url must start with postgres:// or postgresql:// (found ${url.protocol}//); leave it empty for the embedded SQLite file`,
    );
  }
  // A Unix socket directory may be given as ?host=/run/postgresql instead of a host name.
  const host = url.hostname !== '' ? url.hostname : (url.searchParams.get('host') ?? 'localhost');
  const port = url.port !== '' ? url.port : (url.searchParams.get('port') ?? '5432');
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || 'postgres';
  const secrets = [url.password, safeDecode(url.password)].filter((s) => s.length >= 1);
  return { where: `${host}:${port}/${database}`, secrets };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Why a connection failed, in operator words, never with the password. */
function connectionProblem(error: unknown, target: PostgresTarget, timeoutMs: number): string {
  const e = error as { code?: string; message?: string };
  const serverSaid = (e.message ?? String(error)).split('\n')[0] ?? '';
  let reason: string;
  switch (e.code) {
    case 'ECONNREFUSED':
      reason = 'connection refused (is PostgreSQL running and listening on that address and port?)';
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      reason = 'host name not found';
      break;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      reason = `no route or no answer (${e.code})`;
      break;
    case 'ECONNRESET':
      reason = 'the connection was reset (TLS required by the server, or a proxy in between?)';
      break;
    case '28P01':
      reason = 'password authentication failed';
      break;
    case '28000':
      reason = `the server refused the login: ${serverSaid}`;
      break;
    case '3D000':
      reason = 'the database does not exist';
      break;
    case '57P03':
      reason = 'the server is starting up, shutting down or in recovery';
      break;
    case '53300':
      reason = 'the server has no free connection slots (too many connections; lower storage.pool_max or raise max_connections)';
      break;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      reason = `the server's TLS certificate is not trusted (${e.code}); name the CA with sslrootcert=/path/ca.pem in the URL`;
      break;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      reason = "the server's TLS certificate does not name this host";
      break;
    default:
      if (/timeout/i.test(serverSaid)) reason = `no connection within ${timeoutMs} ms`;
      else if (/terminated unexpectedly/i.test(serverSaid)) reason = 'the connection was lost (server restarted or network cut)';
      else reason = serverSaid;
  }
  for (const secret of target.secrets) reason = reason.split(secret).join('***');
  return `cannot reach PostgreSQL at ${target.where}: ${reason}; check storage.url`;
}

/** Errors a connection attempt produces (rather than a query's own failure). */
function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (typeof e?.code === 'string') {
    // SQLSTATE classes 08 (connection), 28 (authorization), 3D000 (no database), 57P0x (shutdown, recovery), 53300 (too many connections).
    if (/^(08|28)/.test(e.code) || ['3D000', '57P01', '57P02', '57P03', '53300'].includes(e.code)) return true;
    if (/^E[A-Z]+$/.test(e.code) || /CERT|TLS/.test(e.code)) return true;
  }
  return /timeout|Connection terminated|connection error/i.test(e?.message ?? '');
}

/**
 * BIGINT (int8) values, such as outbox and audit sequence numbers and count(*), arrive as numbers.
 * They stay far below 2^53; one beyond it fails the query rather than silently losing precision.
 * Set per pool, not on pg's global type table, so nothing else in the process is affected.
 */
const INT8_OID = 20;
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new StorageError(`a BIGINT value ${text} is beyond JavaScript's exact integer range`);
  return value;
}
function postgresTypes(driver: typeof pg): pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID && format !== 'binary'
        ? parseInt8
        : driver.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
  };
}

async function openPostgres(options: StorageOptions): Promise<Storage> {
  const target = parsePostgresUrl(options.url);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const { default: driver } = await import('pg');
  const pool = new driver.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
    // TCP keepalives keep firewalls and load balancers from silently dropping idle connections.
    keepAlive: true,
    application_name: 'neuron',
    types: postgresTypes(driver),
  });
  const reportBackground =
    options.onBackgroundError ?? ((error: StorageError) => process.emitWarning(error.message, 'NeuronStorageWarning'));
  // A connection that dies (server restart, failover, network cut) emits 'error' on its client.
  // Unheard, that event would crash the whole process. Idle clients: the pool forwards it here.
  pool.on('error', (error) =>
    reportBackground(
      new StorageError(`an idle PostgreSQL connection failed and will be replaced: ${connectionProblem(error, target, connectTimeoutMs)}`),
    ),
  );
  // Checked-out clients (a query or transaction in flight): the query in flight is rejected with
  // the same error, which reaches its caller; the pool discards the dead client on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });

  // Connect once now, so a wrong URL, password or database fails at start with a clear message.
  let schema: string;
  try {
    const result = await pool.query<{ schema: string | null }>('SELECT current_schema() AS schema');
    const current = result.rows[0]?.schema ?? null;
    if (current === null) {
      throw new StorageError(
        `PostgreSQL at ${target.where} has no schema to create tables in: the schemas in search_path do not exist; create the schema or fix options=-c search_path=… in storage.url`,
      );
    }
    schema = current;
  } catch (error) {
    await pool.end().catch(() => undefined);
    if (error instanceof StorageError) throw error;
    throw new StorageError(connectionProblem(error, target, connectTimeoutMs));
  }

  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const schemaNote = schema === 'public' ? '' : ` (schema ${schema})`;
  return buildStorage(db, 'postgres', `PostgreSQL ${target.where}${schemaNote}`, {
    writeProbeIntervalMs: options.writeProbeIntervalMs ?? DEFAULT_WRITE_PROBE_INTERVAL_MS,
    begin: CompiledQuery.raw('BEGIN'),
    lock: async (trx, name) => {
      await sql`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEYS[name]})`.execute(trx);
    },
    migrationLock: async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEYS.migrations})`.execute(trx);
    },
    ping: async () => {
      try {
        await sql`SELECT 1`.execute(db);
      } catch (error) {
        if (isConnectionError(error)) throw new StorageError(connectionProblem(error, target, connectTimeoutMs));
        throw error;
      }
    },
    close: async () => {
      await db.destroy();
    },
  });
}

/** Compiled once: every handshake runs them (a sql`` template is compiled anew per call). */
const COMMIT = CompiledQuery.raw('COMMIT');
const ROLLBACK = CompiledQuery.raw('ROLLBACK');
const SAVEPOINT = CompiledQuery.raw('SAVEPOINT neuron_unit');
const ROLLBACK_TO_SAVEPOINT = CompiledQuery.raw('ROLLBACK TO SAVEPOINT neuron_unit');
const RELEASE_SAVEPOINT = CompiledQuery.raw('RELEASE SAVEPOINT neuron_unit');
const TOTAL_CHANGES = 'SELECT total_changes() AS n';

/** One unit of work waiting for a shared commit (Storage.groupTransaction). */
interface GroupedUnit {
  work: (trx: Db) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type UnitOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface DialectOps {
  begin: CompiledQuery;
  /** SQLite: the connection's cached statements, which plain Statements run directly inside a transaction. */
  prepare?: (text: string) => BetterSqlite3.Statement;
  /** Units per shared commit in groupTransaction; absent: every unit commits alone. */
  commitBatchMax?: number;
  lock: (trx: Db, name: LockName) => Promise<void>;
  /** Taken inside the migration transaction. */
  migrationLock: (trx: Db) => Promise<void>;
  ping: () => Promise<void>;
  close: () => Promise<void>;
  writeProbeIntervalMs: number;
}

function buildStorage(db: Db, dialect: Dialect, description: string, ops: DialectOps): Storage {
  /** The connection-bound handles given to `work` while their transaction is open. */
  const openTransactions = new WeakSet<Db>();
  /** Hooks of each open transaction, by name (Storage.beforeCommit). */
  const commitHooks = new WeakMap<Db, Map<string, () => Promise<(() => void) | void>>>();
  let closed = false;
  const grouped: GroupedUnit[] = [];
  let groupFlushScheduled = false;
  /** Set when a transaction fails on a storage failure; cleared by a write probe that commits. */
  let writeFailure: unknown = null;
  let lastWriteProbeAt = -Infinity;
  let writeProbe: Promise<void> | null = null;

  const flushGroup = (): void => {
    groupFlushScheduled = false;
    const units = grouped.splice(0, ops.commitBatchMax);
    if (grouped.length > 0) {
      groupFlushScheduled = true;
      setImmediate(flushGroup);
    }
    // Transactions queue for the one SQLite connection, so the next group waits for this commit.
    void commitGroup(units);
  };

  const commitGroup = async (units: GroupedUnit[]): Promise<void> => {
    // First without savepoints (a unit that fails before writing anything is simply left out);
    // only when a unit failed after writing is the whole group rolled back and run again, each
    // unit in its own savepoint, so its partial writes go and the others' stay.
    const first = await runGroup(units, false);
    if (first !== 'partial write') return settleGroup(units, first);
    const again = await runGroup(units, true);
    // With savepoints every unit's failure is its own: a partial write cannot escape them.
    if (again !== 'partial write') settleGroup(units, again);
  };

  const settleGroup = (units: GroupedUnit[], result: { outcomes: UnitOutcome[]; error?: unknown }): void => {
    units.forEach((unit, i) => {
      const outcome = result.outcomes[i];
      // A failed commit fails everyone; a unit's own error explains its failure best.
      if (outcome !== undefined && !outcome.ok) unit.reject(outcome.error);
      else if ('error' in result) unit.reject(result.error);
      else unit.resolve(outcome!.value);
    });
  };

  const runGroup = async (
    units: GroupedUnit[],
    savepoints: boolean,
  ): Promise<{ outcomes: UnitOutcome[]; error?: unknown } | 'partial write'> => {
    let outcomes: UnitOutcome[] = [];
    let partialWrite = false;
    try {
      await storage.transaction(async (trx) => {
        outcomes = [];
        if (units.length === 1) {
          // Alone: a failure rolls the whole transaction back.
          outcomes.push({ ok: true, value: await units[0]!.work(trx) });
          return;
        }
        for (const unit of units) {
          if (savepoints) await control(trx, SAVEPOINT);
          const changesBefore = savepoints ? 0 : totalChanges();
          try {
            const value = await unit.work(trx);
            if (savepoints) await control(trx, RELEASE_SAVEPOINT);
            outcomes.push({ ok: true, value });
          } catch (error) {
            if (savepoints) {
              await control(trx, ROLLBACK_TO_SAVEPOINT);
              await control(trx, RELEASE_SAVEPOINT);
            } else if (totalChanges() !== changesBefore) {
              partialWrite = true;
              throw error;
            }
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      return partialWrite ? 'partial write' : { outcomes, error };
    }
    return { outcomes };
  };

  /** Rows changed on the connection so far (SQLite's total_changes(): every INSERT, UPDATE and DELETE that completed). */
  const totalChanges = (): number => (ops.prepare!(TOTAL_CHANGES).get() as { n: number }).n;

  /** BEGIN, COMMIT and the savepoints: on SQLite the connection's cached statement, run directly (docs/benchmarks.md, "Pinned"). */
  const control = async (connection: Db, statement: CompiledQuery): Promise<void> => {
    if (ops.prepare !== undefined) ops.prepare(statement.sql).run();
    else await connection.executeQuery(statement);
  };

  const runCommitHooks = async (connection: Db): Promise<Array<() => void>> => {
    const hooks = commitHooks.get(connection);
    if (hooks === undefined) return [];
    const after: Array<() => void> = [];
    for (const hook of hooks.values()) {
      const then = await hook();
      if (then) after.push(then);
    }
    return after;
  };

  const storage: Storage = {
    db,
    dialect,
    description,
    async transaction(work) {
      return db.connection().execute(async (connection) => {
        await control(connection, ops.begin);
        openTransactions.add(connection);
        if (ops.prepare !== undefined) directSqlite.hold(connection, ops.prepare);
        try {
          const result = await work(connection);
          const afterCommit = await runCommitHooks(connection);
          await control(connection, COMMIT);
          // Committed: what follows must not turn into a rollback (hooks' after-steps do not throw).
          for (const after of afterCommit) after();
          return result;
        } catch (error) {
          await control(connection, ROLLBACK).catch(() => undefined);
          if (isStorageFailure(error)) writeFailure = error;
          throw error;
        } finally {
          directSqlite.release(connection);
          openTransactions.delete(connection);
          commitHooks.delete(connection);
        }
      });
    },
    groupTransaction<T>(work: (trx: Db) => Promise<T>): Promise<T> {
      if (ops.commitBatchMax === undefined) return storage.transaction(work);
      return new Promise<T>((resolve, reject) => {
        grouped.push({ work, resolve: resolve as (value: unknown) => void, reject });
        if (!groupFlushScheduled) {
          groupFlushScheduled = true;
          // After this turn's I/O callbacks: every unit that arrived with them joins the group.
          setImmediate(flushGroup);
        }
      });
    },
    async lock(trx, name) {
      // Outside a transaction a PostgreSQL transaction-level lock would be released at once, and
      // on SQLite there would be no BEGIN IMMEDIATE: either way nothing would be serialised.
      if (!openTransactions.has(trx) && !trx.isTransaction) {
        throw new StorageError(`lock('${name}') needs the trx of an open storage.transaction()`);
      }
      await ops.lock(trx, name);
    },
    beforeCommit(trx, name, hook) {
      if (!openTransactions.has(trx)) throw new StorageError(`beforeCommit('${name}') needs the trx of an open storage.transaction()`);
      let hooks = commitHooks.get(trx);
      if (hooks === undefined) {
        hooks = new Map();
        commitHooks.set(trx, hooks);
      }
      if (!hooks.has(name)) hooks.set(name, hook);
    },
    async migrate() {
      try {
        const applied = await runMigrations({
          dialect,
          migrations: MIGRATIONS[dialect],
          exclusive: (work) =>
            storage.transaction(async (trx) => {
              await ops.migrationLock(trx);
              return work(trx);
            }),
        });
        return { applied };
      } catch (error) {
        throw (
          describeStorageFailure(error, description) ??
          new StorageError(`database migration failed: ${(error as Error).message}`, { cause: error })
        );
      }
    },
    async pendingMigrations() {
      return pendingMigrations(db, { dialect, migrations: MIGRATIONS[dialect] });
    },
    ping: ops.ping,
    async writesSucceed() {
      if (writeFailure === null) return true;
      if (writeProbe === null && Date.now() - lastWriteProbeAt >= ops.writeProbeIntervalMs) {
        lastWriteProbeAt = Date.now();
        // Only the probe clears the failure: a small write that fits into space already allocated
        // proves nothing about the writes that need more, and would make readiness flap.
        writeProbe = probeWrite(storage)
          .then(
            () => {
              writeFailure = null;
            },
            () => undefined,
          )
          .finally(() => {
            writeProbe = null;
          });
      }
      if (writeProbe !== null) await writeProbe;
      return writeFailure === null;
    },
    async close() {
      if (closed) return;
      closed = true;
      await ops.close();
    },
  };
  return storage;
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
