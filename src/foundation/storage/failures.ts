/**
 * Storage that cannot be used: the coded StorageError with the operator's remedy, which errors
 * mean the storage itself refuses writes (a full disk, I/O, read-only, corrupt), the write probe
 * that tells when writes succeed again, and SQLite's start-up integrity check. docs/storage.md,
 * "When the storage fails".
 */
import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { Storage } from './types.ts';

/**
 * Why the database cannot be used at start, for operators (docs/errors.md, "Start-up refusals"):
 * STORAGE_CORRUPT, a damaged file; STORAGE_FULL, no space to write; STORAGE_UNAVAILABLE, anything else.
 */
export type StorageErrorCode = 'STORAGE_CORRUPT' | 'STORAGE_FULL' | 'STORAGE_UNAVAILABLE';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(message: string, options?: { cause?: unknown; code?: StorageErrorCode }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = options?.code ?? 'STORAGE_UNAVAILABLE';
  }
}

/** What an operator should do when a database cannot be opened; never "start afresh". */
export const RESTORE_ADVICE =
  'restore the database from a backup (docs/deployment.md, "Backups of the SQLite database"); do not delete or move the file aside to start afresh, which discards every record and the organization key';
const FREE_SPACE_ADVICE =
  'free space on that file system (or grow it) and start again; the records are intact, do not delete or move the file aside';

/**
 * A coded StorageError with the operator's remedy when `error` is a full disk (STORAGE_FULL) or a
 * damaged database (STORAGE_CORRUPT); null for anything else. Used wherever the start can fail on
 * the database: opening, migrating, the first writes.
 */
export function describeStorageFailure(error: unknown, database: string): StorageError | null {
  if (error instanceof StorageError && error.code !== 'STORAGE_UNAVAILABLE') return error;
  const message = (error as Error)?.message ?? String(error);
  if (isDiskFull(error)) {
    return new StorageError(`STORAGE_FULL: no space to write the database ${database} (${message}); ${FREE_SPACE_ADVICE}`, {
      cause: error,
      code: 'STORAGE_FULL',
    });
  }
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && /^(SQLITE_(CORRUPT|NOTADB)\w*|XX00[12])$/.test(code)) {
    return new StorageError(`STORAGE_CORRUPT: the database ${database} is damaged (${message}); ${RESTORE_ADVICE}`, {
      cause: error,
      code: 'STORAGE_CORRUPT',
    });
  }
  return null;
}

export function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT' || code === '53100';
}

/**
 * `PRAGMA quick_check`: every page read and its structure checked (not the index contents, which
 * integrity_check adds at several times the cost). Returns the problems found, none when sound.
 */
export function quickCheckProblems(connection: BetterSqlite3.Database): string[] {
  const rows = connection.pragma('quick_check') as Array<{ quick_check: string }>;
  const problems = rows.map((row) => row.quick_check);
  return problems.length === 1 && problems[0] === 'ok' ? [] : problems;
}

/**
 * Bytes the write probe stores (then drops): more than one page (SQLite 4 KiB, PostgreSQL 8 KiB
 * after its compression, which random hex text defeats), so the probe needs space like a real write.
 */
const WRITE_PROBE_BYTES = 8_192;

/**
 * True when an error says the storage itself cannot take writes, as opposed to a query's own fault
 * (a constraint) or contention (busy): a full disk or quota, an I/O error, a read-only or corrupt
 * database. Follows `cause` links, since callers may wrap the driver's error.
 */
export function isStorageFailure(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && STORAGE_FAILURE_CODE.test(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
// SQLite result codes (better-sqlite3 names them, extended codes included); errno names from the
// file system; PostgreSQL SQLSTATE classes 53 (insufficient resources: 53100 disk_full) and 58
// (system error: 58030 io_error), XX001/XX002 (data or index corrupted) and 25006 (read-only
// transaction: a standby).
const STORAGE_FAILURE_CODE =
  /^(SQLITE_(FULL|IOERR|CORRUPT|NOTADB|READONLY|CANTOPEN|PROTOCOL)\w*|ENOSPC|EDQUOT|EIO|EROFS|53\w{3}|58\w{3}|XX00[12]|25006)$/;

/** One small real commit: a table created, filled with a few KB, dropped. Throws when it fails. */
export async function probeWrite(storage: Storage): Promise<void> {
  const table = sql.table(`neuron_write_probe_${randomBytes(6).toString('hex')}`);
  await storage.transaction(async (trx) => {
    await sql`CREATE TABLE ${table} (filler TEXT NOT NULL)`.execute(trx);
    await sql`INSERT INTO ${table} (filler) VALUES (${randomBytes(WRITE_PROBE_BYTES / 2).toString('hex')})`.execute(trx);
    await sql`DROP TABLE ${table}`.execute(trx);
  });
}
