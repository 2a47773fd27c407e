/**
 * Time-bounded leases in the `leases` table (name, holder, expires_at): at most one holder per
 * name at any moment, decided by the database, so several instances sharing one PostgreSQL (or
 * processes sharing one SQLite file) agree on who does a once-only job.
 *
 * Expiry is computed and compared with the database's clock, never an instance's: instances whose
 * clocks disagree by seconds still agree on when a lease ran out. Times are stored in the portable
 * ISO-8601 text format of every other table.
 *
 * A lease is not a fencing token: a holder paused longer than its lease (a stopped VM, a long
 * garbage-collection pause) may act once more after another instance took over. Use leases for
 * work that tolerates a rare duplicate (heartbeats, periodic sweeps), and the database's own
 * constraints and locks for anything that must never happen twice.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Db, Dialect, Storage } from '../../foundation/storage/index.ts';

export interface LeaseState {
  /** Whether the caller holds the lease now. */
  held: boolean;
  /** The current holder, or null when nobody holds an unexpired lease. */
  holder: string | null;
  /** When the current holder's lease ends (database clock), or null. */
  expiresAt: string | null;
}

/** Longest lease accepted: a day. Beyond that a crashed holder would block the job for too long. */
const MAX_TTL_MS = 24 * 60 * 60 * 1000;
/** Lease names and holders are identifiers, not data; short keeps the table small. */
const MAX_NAME_LENGTH = 200;

/** The database's current time, as ISO-8601 UTC text with milliseconds. */
function databaseNow(dialect: Dialect): RawBuilder<string> {
  return dialect === 'postgres'
    ? sql<string>`to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
    : sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;
}

/** The database's current time plus `ms`, same format. */
function databaseNowPlus(dialect: Dialect, ms: number): RawBuilder<string> {
  return dialect === 'postgres'
    ? sql<string>`to_char((statement_timestamp() + ${ms}::integer * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
    : sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`+${ms / 1000} seconds`})`;
}

function checkName(what: string, value: string): void {
  if (value.length === 0 || value.length > MAX_NAME_LENGTH) throw new RangeError(`${what} must be 1 to ${MAX_NAME_LENGTH} characters`);
}

export class LeaseStore {
  readonly #db: Db;
  readonly #dialect: Dialect;

  constructor(storage: Pick<Storage, 'db' | 'dialect'>) {
    this.#db = storage.db;
    this.#dialect = storage.dialect;
  }

  /**
   * Takes the lease when it is free or expired, or extends it when `holder` already has it; in
   * one atomic statement (INSERT … ON CONFLICT DO UPDATE … WHERE expired OR mine), so two
   * instances racing for a free lease never both get it.
   */
  async acquireOrRenew(name: string, holder: string, ttlMs: number): Promise<LeaseState> {
    checkName('lease name', name);
    checkName('lease holder', holder);
    if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS)
      throw new RangeError(`lease ttl must be an integer from 1 to ${MAX_TTL_MS} ms`);
    const now = databaseNow(this.#dialect);
    const row = await this.#db
      .insertInto('leases')
      .values({ name, holder, expires_at: databaseNowPlus(this.#dialect, ttlMs) })
      .onConflict((conflict) =>
        conflict
          .column('name')
          .doUpdateSet((eb) => ({ holder: eb.ref('excluded.holder'), expires_at: eb.ref('excluded.expires_at') }))
          .where((eb) => eb.or([eb('leases.expires_at', '<=', now), eb('leases.holder', '=', holder)])),
      )
      .returning(['holder', 'expires_at'])
      .executeTakeFirst();
    if (row) return { held: true, holder: row.holder, expiresAt: row.expires_at };
    const current = await this.current(name);
    // The lease may have expired between the two statements; it is still not ours.
    return { held: false, holder: current?.holder ?? null, expiresAt: current?.expiresAt ?? null };
  }

  /** Gives the lease up if `holder` has it, so another instance can take over at once. */
  async release(name: string, holder: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** The unexpired holder of a lease, if any. */
  async current(name: string): Promise<{ holder: string; expiresAt: string } | null> {
    const row = await this.#db
      .selectFrom('leases')
      .select(['holder', 'expires_at'])
      .where('name', '=', name)
      .where('expires_at', '>', databaseNow(this.#dialect))
      .executeTakeFirst();
    return row ? { holder: row.holder, expiresAt: row.expires_at } : null;
  }
}
