/**
 * The storage types every store and the storage internals share: the query builder (`Db`), the
 * dialect, and the `Storage` interface that engine.ts implements. Apart from the implementation so
 * the files it uses (migrate.ts, failures.ts, locking.ts) can name them without an import cycle.
 */
import type { Kysely } from 'kysely';
import type { Database } from './tables.ts';

export type Db = Kysely<Database>;
export type Dialect = 'sqlite' | 'postgres';

/** Names of the cross-instance locks `Storage.lock` takes. */
export type LockName = 'audit_chain';

/** How a unit of `groupTransaction` may wait for others to share its commit. */
export interface GroupOptions {
  /**
   * How many more units are on their way (for a completing handshake: the sessions awaiting their
   * token or their challenge response). When at least `sqliteCommitSiblings` more are expected
   * within `sqliteCommitDelayMs`, by this count or at the rate such units arrived lately, the group
   * waits up to that long for them (or until `sqliteCommitBatchMax` units wait); with fewer, it is
   * committed at once. Asked as each unit arrives; a unit without it never waits.
   */
  othersComing?: () => number;
}

export interface Storage {
  readonly db: Db;
  readonly dialect: Dialect;
  /** Human description without secrets, for logs and `neuron status`. */
  readonly description: string;
  /**
   * Runs `work` in one transaction. SQLite takes the write lock up front (BEGIN IMMEDIATE) so that
   * two processes never deadlock upgrading a read lock; PostgreSQL uses READ COMMITTED plus the
   * explicit locks below. Inside `work`, use only `trx`: on SQLite, `storage.db` or a nested
   * `storage.transaction()` would wait for this very transaction forever.
   */
  transaction<T>(work: (trx: Db) => Promise<T>): Promise<T>;
  /**
   * Like `transaction`, for small independent units of work that arrive together (completing
   * handshakes). On SQLite, the units queued in one turn of the event loop (at most
   * `sqliteCommitBatchMax`) run one after another in one transaction and share one commit: one
   * fsync serves them all. A unit that throws before writing anything is left out; one that throws
   * after writing makes the group run again with each unit in its own savepoint, so it is rolled
   * back alone. Either way its caller gets the error and the others commit. Every caller's promise
   * settles after the shared commit, never before, so nothing is reported done that could still be
   * lost. A failed commit fails every unit of the group. On PostgreSQL each unit is its own
   * transaction (the server already groups concurrent commits, and the pool runs them in parallel).
   * `work` must use only `trx` and await nothing but queries on it, and may run twice (that
   * rerun): nothing it does outside `trx` may matter twice. With `options.othersComing`, a SQLite
   * group waits up to `sqliteCommitDelayMs` for the others (see GroupOptions).
   */
  groupTransaction<T>(work: (trx: Db) => Promise<T>, options?: GroupOptions): Promise<T>;
  /**
   * Serialises a critical section across every instance sharing the database. Must be called with
   * the `trx` of an open transaction (a StorageError otherwise); held until it commits or rolls
   * back, so take it as late in the transaction as possible.
   */
  lock(trx: Db, name: LockName): Promise<void>;
  /**
   * Runs `hook` once, inside the open transaction of `trx`, after its work and before COMMIT (the
   * audit log seals its Merkle tree there, once per commit group). Registering the same `name`
   * twice in one transaction keeps the first. What `hook` returns, if a function, runs after the
   * COMMIT succeeded. A StorageError outside an open storage.transaction().
   */
  beforeCommit(trx: Db, name: string, hook: () => Promise<(() => void) | undefined>): void;
  migrate(): Promise<{ applied: string[] }>;
  pendingMigrations(): Promise<string[]>;
  /** Throws a StorageError saying what is wrong when the database cannot answer. */
  ping(): Promise<void>;
  /**
   * Whether writes succeed: false from a transaction that failed on a storage failure (disk full,
   * I/O error, read-only or corrupt database; see isStorageFailure) until a write probe commits.
   * While false, a call (at most once per writeProbeIntervalMs) runs the probe, a commit that
   * needs new space (a table created, filled with 8 KB, dropped), so an instance taken out of a
   * load balancer's rotation notices by itself when space is freed. Feeds `/health/ready`
   * (docs/storage.md).
   */
  writesSucceed(): Promise<boolean>;
  /**
   * Whether writes succeed: false from a transaction that failed on a storage failure (disk full,
   * I/O error, read-only or corrupt database; see isStorageFailure) until a write probe commits.
   * While false, a call (at most once per writeProbeIntervalMs) runs the probe, a commit that
   * needs new space (a table created, filled with 8 KB, dropped), so an instance taken out of a
   * load balancer's rotation notices by itself when space is freed. Feeds `/health/ready`
   * (docs/storage.md).
   */
  writesSucceed(): Promise<boolean>;
  /** Waits for queries in flight, then closes every connection. Idempotent. */
  close(): Promise<void>;
}
