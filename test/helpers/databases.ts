/**
 * The database backends a storage-facing suite runs on: always SQLite (a file in a fresh temporary
 * directory), plus PostgreSQL when NEURON_TEST_POSTGRES_URL is set (start a throwaway server with
 * `bash scripts/postgres-test-server.sh`). Each opened database is empty and private to its test:
 * on PostgreSQL a schema of its own, named in the connection's search_path and dropped afterwards.
 *
 *   for (const backend of testDatabases()) {
 *     describe(`relationships (${backend.name})`, () => {
 *       it('…', async (t) => {
 *         const { storage } = await backend.open(t);
 *         …
 *
 * When the variable is unset the PostgreSQL variant is registered as one skipped test per file,
 * with the reason, so the runner counts it as skipped (never as passed, never silently absent).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { openStorage, type Dialect, type Storage, type StorageOptions } from '../../src/foundation/storage/index.ts';

export const POSTGRES_URL_VARIABLE = 'NEURON_TEST_POSTGRES_URL';

/** Why a PostgreSQL suite did not run, as the test runner reports it. */
export const POSTGRES_SKIP_REASON = `${POSTGRES_URL_VARIABLE} not set (to run it: export "$(bash scripts/postgres-test-server.sh)")`;

/** Whether this file (one process per test file) has registered its skipped PostgreSQL variant. */
let skipRegistered = false;

/**
 * Registers one skipped test named after `what` when no PostgreSQL URL is given, so the runner
 * reports the suite as skipped with the reason. Once per test file; true when it was skipped.
 */
export function skipWithoutPostgres(what = "PostgreSQL variant of this file's suites"): boolean {
  const url = process.env[POSTGRES_URL_VARIABLE];
  if (url !== undefined && url !== '') return false;
  if (!skipRegistered) {
    skipRegistered = true;
    test(what, { skip: POSTGRES_SKIP_REASON }, () => {});
  }
  return true;
}

export interface TestDatabase {
  readonly backend: Dialect;
  /** Migrated unless opened with { migrate: false }. */
  readonly storage: Storage;
  /**
   * Options that open another Storage over the same database (another pool on PostgreSQL).
   */
  readonly options: StorageOptions;
  /**
   * Another Storage over the same database, as a second instance would have. PostgreSQL: a
   * separate pool, so its transactions really run beside this one's. SQLite: the same Storage,
   * because one process drives one SQLite file through one connection (a second connection in the
   * same thread would block the event loop in SQLite's busy wait while the first holds the lock).
   */
  openPeer(options?: { poolMax?: number }): Promise<Storage>;
  /** Closes every Storage opened here and removes the database. Runs by itself after the test. */
  close(): Promise<void>;
}

export interface TestBackend {
  readonly name: Dialect;
  /** A fresh, empty database for one test; closed and removed after the test `t`. */
  open(t?: { after(fn: () => Promise<void>): void }, options?: { migrate?: boolean; poolMax?: number }): Promise<TestDatabase>;
}

/** Small and fast: these are test databases on the local machine. */
const BUSY_TIMEOUT_MS = 5_000; // generous: never the reason a test fails
const DEFAULT_POOL_MAX = 4; // enough for the concurrency tests, small beside max_connections

export function testDatabases(): TestBackend[] {
  const backends: TestBackend[] = [sqliteBackend];
  const url = process.env[POSTGRES_URL_VARIABLE];
  if (!skipWithoutPostgres()) backends.push(postgresBackend(url!));
  return backends;
}

const sqliteBackend: TestBackend = {
  name: 'sqlite',
  async open(t, options = {}) {
    const dir = mkdtempSync(path.join(tmpdir(), 'neuron-storage-'));
    const storageOptions: StorageOptions = {
      url: '',
      sqliteFile: path.join(dir, 'neuron.sqlite'),
      sqliteSynchronous: 'FULL',
      busyTimeoutMs: BUSY_TIMEOUT_MS,
      poolMax: 1,
    };
    const storage = await openStorage(storageOptions);
    if (options.migrate !== false) await storage.migrate();
    let closed = false;
    const database: TestDatabase = {
      backend: 'sqlite',
      storage,
      options: storageOptions,
      openPeer: async () => storage,
      async close() {
        if (closed) return;
        closed = true;
        await storage.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    t?.after(() => database.close());
    return database;
  },
};

function postgresBackend(baseUrl: string): TestBackend {
  return {
    name: 'postgres',
    async open(t, options = {}) {
      // Unique per test, valid unquoted, and traceable to the process that made it.
      const schema = `neuron_t_${process.pid}_${randomBytes(6).toString('hex')}`;
      await admin(baseUrl, `CREATE SCHEMA ${schema}`);
      const url = new URL(baseUrl);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const storageOptions: StorageOptions = {
        url: url.toString(),
        sqliteFile: '',
        sqliteSynchronous: 'FULL',
        busyTimeoutMs: BUSY_TIMEOUT_MS,
        poolMax: options.poolMax ?? DEFAULT_POOL_MAX,
      };
      const opened: Storage[] = [];
      const open = async (poolMax?: number): Promise<Storage> => {
        const storage = await openStorage({ ...storageOptions, poolMax: poolMax ?? storageOptions.poolMax });
        opened.push(storage);
        return storage;
      };
      let storage: Storage;
      try {
        storage = await open();
        if (options.migrate !== false) await storage.migrate();
      } catch (error) {
        await Promise.all(opened.map((s) => s.close()));
        await admin(baseUrl, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        throw error;
      }
      let closed = false;
      const database: TestDatabase = {
        backend: 'postgres',
        storage,
        options: storageOptions,
        openPeer: async (peer = {}) => open(peer.poolMax),
        async close() {
          if (closed) return;
          closed = true;
          await Promise.all(opened.map((s) => s.close()));
          await admin(baseUrl, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        },
      };
      t?.after(() => database.close());
      return database;
    },
  };
}

/** One statement on a short-lived connection of its own. */
async function admin(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
