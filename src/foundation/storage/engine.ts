/**
 * What both dialects share: transactions on one connection with commit hooks, grouped commits
 * (several units of work in one SQLite commit; savepoints only when a unit failed after writing), migrations, and the
 * write-failure state that readiness reports until a write probe commits again.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery } from 'kysely';
import type { Db, Dialect, GroupOptions, LockName, Storage } from './types.ts';
import { MIGRATIONS } from './migration-list.ts';
import { pendingMigrations, runMigrations } from './migrate.ts';
import { directSqlite } from './statements.ts';
import { ArrivalRate } from './arrivals.ts';
import { describeStorageFailure, isStorageFailure, probeWrite, StorageError } from './failures.ts';

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

export interface DialectOps {
  begin: CompiledQuery;
  /** SQLite: the connection's cached statements, which plain Statements run directly inside a transaction. */
  prepare?: (text: string) => BetterSqlite3.Statement;
  /** Units per shared commit in groupTransaction; absent: every unit commits alone. */
  commitBatchMax?: number;
  /** How long a group waits for units on their way, and how many must be (CommitGroups). */
  commitDelayMs?: number;
  commitSiblings?: number;
  lock: (trx: Db, name: LockName) => Promise<void>;
  /** Taken inside the migration transaction. */
  migrationLock: (trx: Db) => Promise<void>;
  ping: () => Promise<void>;
  close: () => Promise<void>;
  writeProbeIntervalMs: number;
}

type CommitHook = () => Promise<(() => void) | undefined>;

/**
 * Units of work waiting for a shared commit (Storage.groupTransaction), committed together at
 * most `batchMax` at a time. A group is committed after the current turn's I/O callbacks (every
 * unit that arrived with them joins it), or, when at least `siblings` more are expected within
 * `delayMs` (on their way by the caller's count, `GroupOptions.othersComing`, or at the rate units
 * have been arriving lately), up to `delayMs` later, so that the commit's per-group work — the
 * fsync, the audit tree head and its signature — serves more of them (PostgreSQL's commit_delay
 * and commit_siblings, for the same reason). Only units that pass `othersComing` ever wait.
 */
class CommitGroups {
  readonly #transaction: Storage['transaction'];
  readonly #batchMax: number;
  readonly #delayMs: number;
  readonly #siblings: number;
  readonly #control: ControlStatement;
  /** Rows changed on the connection so far (SQLite's total_changes(): every INSERT, UPDATE and DELETE that completed). */
  readonly #totalChanges: () => number;
  readonly #waiting: GroupedUnit[] = [];
  /** How the next flush is scheduled: not yet, after this turn's I/O, or by the delay's timer. */
  #scheduled: 'no' | 'this turn' | NodeJS.Timeout = 'no';
  /** Group commits started and not yet settled (close waits for them). */
  readonly #committing = new Set<Promise<void>>();
  /** Arrivals of the units that may wait. */
  readonly #arrivals = new ArrivalRate();

  constructor(options: {
    transaction: Storage['transaction'];
    batchMax: number;
    delayMs: number;
    siblings: number;
    control: ControlStatement;
    prepare: NonNullable<DialectOps['prepare']>;
  }) {
    this.#transaction = options.transaction;
    this.#batchMax = options.batchMax;
    this.#delayMs = options.delayMs;
    this.#siblings = options.siblings;
    this.#control = options.control;
    const prepare = options.prepare;
    this.#totalChanges = () => (prepare(TOTAL_CHANGES).get() as { n: number }).n;
  }

  add<T>(work: (trx: Db) => Promise<T>, options: GroupOptions | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#mayWait(options?.othersComing)) this.#flushThisTurn();
      else if (this.#scheduled === 'no') this.#scheduled = setTimeout(this.#flush, this.#delayMs);
    });
  }

  /** Whether the group should wait for more: not full, and at least `siblings` expected within the delay. */
  #mayWait(othersComing: (() => number) | undefined): boolean {
    if (othersComing === undefined || this.#delayMs === 0) return false;
    this.#arrivals.arrived(performance.now());
    if (this.#waiting.length >= this.#batchMax) return false;
    return this.#arrivals.expectedWithin(this.#delayMs) >= this.#siblings || othersComing() >= this.#siblings;
  }

  /** Commits what is waiting now, then waits for every group commit started (Storage.close). */
  async drain(): Promise<void> {
    if (this.#waiting.length > 0) this.#flushThisTurn();
    while (this.#scheduled !== 'no' || this.#committing.size > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      await Promise.all(this.#committing);
    }
  }

  /** The group goes after this turn's I/O callbacks, whatever was scheduled before. */
  #flushThisTurn(): void {
    if (this.#scheduled === 'this turn') return;
    if (this.#scheduled !== 'no') clearTimeout(this.#scheduled);
    this.#scheduled = 'this turn';
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#scheduled = 'no';
    const units = this.#waiting.splice(0, this.#batchMax);
    if (this.#waiting.length > 0) this.#flushThisTurn();
    // Transactions queue for the one SQLite connection, so the next group waits for this commit.
    const committing = this.#commit(units);
    this.#committing.add(committing);
    void committing.finally(() => this.#committing.delete(committing));
  };

  async #commit(units: GroupedUnit[]): Promise<void> {
    // First without savepoints (a unit that fails before writing anything is simply left out);
    // only when a unit failed after writing is the whole group rolled back and run again, each
    // unit in its own savepoint, so its partial writes go and the others' stay.
    const first = await this.#run(units, false);
    if (first !== 'partial write') return settleGroup(units, first);
    const again = await this.#run(units, true);
    // With savepoints every unit's failure is its own: a partial write cannot escape them.
    if (again !== 'partial write') settleGroup(units, again);
  }

  async #run(units: GroupedUnit[], savepoints: boolean): Promise<GroupResult | 'partial write'> {
    let outcomes: UnitOutcome[] = [];
    let partialWrite = false;
    try {
      await this.#transaction(async (trx) => {
        outcomes = [];
        if (units.length === 1) {
          // Alone: a failure rolls the whole transaction back.
          outcomes.push({ ok: true, value: await units[0]!.work(trx) });
          return;
        }
        for (const unit of units) {
          if (savepoints) {
            outcomes.push(await runInSavepoint(trx, unit, this.#control));
            continue;
          }
          const changesBefore = this.#totalChanges();
          try {
            outcomes.push({ ok: true, value: await unit.work(trx) });
          } catch (error) {
            if (this.#totalChanges() !== changesBefore) {
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
  }
}

type GroupResult = { outcomes: UnitOutcome[]; error?: unknown };

/** Settles every unit of a group: a failed commit fails everyone; a unit's own error explains its failure best. */
function settleGroup(units: GroupedUnit[], result: GroupResult): void {
  for (const [i, unit] of units.entries()) {
    const outcome = result.outcomes[i];
    if (outcome !== undefined && !outcome.ok) unit.reject(outcome.error);
    else if ('error' in result) unit.reject(result.error);
    else unit.resolve(outcome!.value);
  }
}

/** One unit of a shared commit, in its own savepoint: its failure rolls back only its own writes. */
async function runInSavepoint(trx: Db, unit: GroupedUnit, control: ControlStatement): Promise<UnitOutcome> {
  await control(trx, SAVEPOINT);
  try {
    const value = await unit.work(trx);
    await control(trx, RELEASE_SAVEPOINT);
    return { ok: true, value };
  } catch (error) {
    await control(trx, ROLLBACK_TO_SAVEPOINT);
    await control(trx, RELEASE_SAVEPOINT);
    return { ok: false, error };
  }
}

/** Runs BEGIN, COMMIT, ROLLBACK or a savepoint statement on a connection. */
type ControlStatement = (connection: Db, statement: CompiledQuery) => Promise<void>;

/** On SQLite the connection's cached statement, run directly (docs/benchmarks.md, "Pinned"); elsewhere through kysely. */
function controlStatements(prepare: DialectOps['prepare']): ControlStatement {
  return async (connection, statement) => {
    if (prepare !== undefined) prepare(statement.sql).run();
    else await connection.executeQuery(statement);
  };
}

/** Whether writes succeed: set by a transaction that failed on a storage failure, cleared only by a write probe that commits. */
class WriteHealth {
  readonly #probeIntervalMs: number;
  #failure: unknown = null;
  #lastProbeAt = -Infinity;
  #probe: Promise<void> | null = null;

  constructor(options: { probeIntervalMs: number }) {
    this.#probeIntervalMs = options.probeIntervalMs;
  }

  failed(error: unknown): void {
    this.#failure = error;
  }

  async writesSucceed(probe: () => Promise<void>): Promise<boolean> {
    if (this.#failure === null) return true;
    if (this.#probe === null && Date.now() - this.#lastProbeAt >= this.#probeIntervalMs) {
      this.#lastProbeAt = Date.now();
      // Only the probe clears the failure: a small write that fits into space already allocated
      // proves nothing about the writes that need more, and would make readiness flap.
      this.#probe = probe()
        .then(
          () => {
            this.#failure = null;
          },
          () => undefined,
        )
        .finally(() => {
          this.#probe = null;
        });
    }
    if (this.#probe !== null) await this.#probe;
    return this.#failure === null;
  }
}

/** The transactions open on the connection and their commit hooks (Storage.beforeCommit). */
class OpenTransactions {
  /** The connection-bound handles given to `work` while their transaction is open. */
  readonly #open = new WeakSet<Db>();
  /** Hooks of each open transaction, by name. */
  readonly #hooks = new WeakMap<Db, Map<string, CommitHook>>();

  opened(connection: Db): void {
    this.#open.add(connection);
  }

  ended(connection: Db): void {
    this.#open.delete(connection);
    this.#hooks.delete(connection);
  }

  isOpen(connection: Db): boolean {
    return this.#open.has(connection);
  }

  /** Adds a hook under `name`; a second hook of the same name in one transaction is ignored. */
  addHook(connection: Db, name: string, hook: CommitHook): void {
    let hooks = this.#hooks.get(connection);
    if (hooks === undefined) {
      hooks = new Map();
      this.#hooks.set(connection, hooks);
    }
    if (!hooks.has(name)) hooks.set(name, hook);
  }

  /** Runs the transaction's hooks before COMMIT; returns their after-commit steps. */
  async runHooks(connection: Db): Promise<Array<() => void>> {
    const hooks = this.#hooks.get(connection);
    if (hooks === undefined) return [];
    const after: Array<() => void> = [];
    for (const hook of hooks.values()) {
      const then = await hook();
      if (then) after.push(then);
    }
    return after;
  }
}

export function buildStorage(db: Db, dialect: Dialect, description: string, ops: DialectOps): Storage {
  const open = new OpenTransactions();
  const writeHealth = new WriteHealth({ probeIntervalMs: ops.writeProbeIntervalMs });
  let closed = false;
  const control = controlStatements(ops.prepare);
  const transaction: Storage['transaction'] = (work) =>
    db.connection().execute(async (connection) => {
      await control(connection, ops.begin);
      open.opened(connection);
      if (ops.prepare !== undefined) directSqlite.hold(connection, ops.prepare);
      try {
        const result = await work(connection);
        const afterCommit = await open.runHooks(connection);
        await control(connection, COMMIT);
        // Committed: what follows must not turn into a rollback (hooks' after-steps do not throw).
        for (const after of afterCommit) after();
        return result;
      } catch (error) {
        await control(connection, ROLLBACK).catch(() => undefined);
        if (isStorageFailure(error)) writeHealth.failed(error);
        throw error;
      } finally {
        directSqlite.release(connection);
        open.ended(connection);
      }
    });
  // Grouped commits are SQLite's (commitBatchMax is set with its prepare).
  const groups =
    ops.commitBatchMax === undefined || ops.prepare === undefined
      ? null
      : new CommitGroups({
          transaction,
          batchMax: ops.commitBatchMax,
          delayMs: ops.commitDelayMs ?? 0,
          siblings: ops.commitSiblings ?? 1,
          control,
          prepare: ops.prepare,
        });

  const storage: Storage = {
    db,
    dialect,
    description,
    transaction,
    groupTransaction: (work, options) => (groups === null ? transaction(work) : groups.add(work, options)),
    async lock(trx, name) {
      // Outside a transaction a PostgreSQL transaction-level lock would be released at once, and
      // on SQLite there would be no BEGIN IMMEDIATE: either way nothing would be serialised.
      if (!open.isOpen(trx) && !trx.isTransaction) {
        throw new StorageError(`lock('${name}') needs the trx of an open storage.transaction()`);
      }
      await ops.lock(trx, name);
    },
    beforeCommit(trx, name, hook) {
      if (!open.isOpen(trx)) throw new StorageError(`beforeCommit('${name}') needs the trx of an open storage.transaction()`);
      open.addHook(trx, name, hook);
    },
    migrate: () => migrate(storage, ops),
    pendingMigrations: () => pendingMigrations(db, { dialect, migrations: MIGRATIONS[dialect] }),
    ping: ops.ping,
    writesSucceed: () => writeHealth.writesSucceed(() => probeWrite(storage)),
    async close() {
      if (closed) return;
      closed = true;
      // Units waiting for a delayed group commit are committed, not dropped.
      await groups?.drain();
      await ops.close();
    },
  };
  return storage;
}

/** Applies the pending migrations in one transaction under the migration lock. */
async function migrate(storage: Storage, ops: DialectOps): Promise<{ applied: string[] }> {
  try {
    const applied = await runMigrations({
      dialect: storage.dialect,
      migrations: MIGRATIONS[storage.dialect],
      exclusive: (work) =>
        storage.transaction(async (trx) => {
          await ops.migrationLock(trx);
          return work(trx);
        }),
    });
    return { applied };
  } catch (error) {
    throw (
      describeStorageFailure(error, storage.description) ??
      new StorageError(`database migration failed: ${(error as Error).message}`, { cause: error })
    );
  }
}
