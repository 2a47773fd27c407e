/**
 * Storage that cannot take writes: a full disk noticed by `writesSucceed()` (and so by
 * `/health/ready`) until a commit succeeds again, and a damaged SQLite file refused at start with
 * advice to restore from a backup, never to move the file aside.
 *
 * A full disk is simulated deterministically with SQLite's `PRAGMA max_page_count`: once the file
 * has as many pages as allowed, every write that needs a new page fails with SQLITE_FULL, exactly
 * the error a full file system gives.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, mkdtempSync, openSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { isStorageFailure, openStorage, StorageError, type Storage, type StorageOptions } from '../../src/foundation/storage/index.ts';
import { testDatabases } from '../helpers/databases.ts';

function sqliteOptions(file: string, extra: Partial<StorageOptions> = {}): StorageOptions {
  return { url: '', sqliteFile: file, sqliteSynchronous: 'FULL', busyTimeoutMs: 100, poolMax: 1, ...extra };
}

function freshFile(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'neuron-storage-')), 'neuron.sqlite');
}

/** A block whose reason is big enough (16 KB) to need new pages. */
function bigBlock(id: string): { patient_agent_id: string; reason: string; blocked_by: string; created_at: string } {
  return { patient_agent_id: id, reason: randomBytes(8_192).toString('hex'), blocked_by: 'test', created_at: '2026-01-01T00:00:00.000Z' };
}

/** Caps the file at the pages it has now: from here on, growing it fails with SQLITE_FULL. */
async function fillTheDisk(storage: Storage): Promise<void> {
  const pages = await sql<{ page_count: number }>`PRAGMA page_count`.execute(storage.db);
  await sql.raw(`PRAGMA max_page_count = ${pages.rows[0]!.page_count}`).execute(storage.db);
}

async function freeSpace(storage: Storage): Promise<void> {
  // SQLite's default ceiling (4294967294 pages): the disk is "empty" again.
  await sql.raw('PRAGMA max_page_count = 4294967294').execute(storage.db);
}

for (const backend of testDatabases()) {
  describe(`writes that fail on the storage (${backend.name})`, () => {
    it('a storage failure marks writes failing; the write probe (a real commit) clears it; other errors do not count', async (t) => {
      const { storage } = await backend.open(t);
      assert.equal(await storage.writesSucceed(), true);
      // A query's own fault (a constraint) says nothing about the disk.
      await assert.rejects(
        storage.transaction(async (trx) => {
          await trx
            .insertInto('blocks')
            .values({ ...bigBlock('dup'), reason: null })
            .execute();
          await trx
            .insertInto('blocks')
            .values({ ...bigBlock('dup'), reason: null })
            .execute();
        }),
      );
      assert.equal(await storage.writesSucceed(), true, 'a unique violation is not a storage failure');
      // PostgreSQL's disk_full, as the driver reports it; the probe then commits for real.
      const diskFull = Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' });
      await assert.rejects(
        storage.transaction(async () => {
          throw diskFull;
        }),
      );
      assert.equal(await storage.writesSucceed(), true, 'the probe committed, so writes succeed again');
      const leftovers =
        storage.dialect === 'sqlite'
          ? await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE name LIKE 'neuron_write_probe%'`.execute(storage.db)
          : await sql<{
              name: string;
            }>`SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE 'neuron_write_probe%'`.execute(storage.db);
      assert.deepEqual(leftovers.rows, [], 'the probe leaves no table behind');
    });
  });
}

describe('writes that fail on the storage (sqlite full disk)', () => {
  it('SQLITE_FULL: writes are reported failing until space is freed and a commit succeeds', async () => {
    const storage = await openStorage(sqliteOptions(freshFile(), { writeProbeIntervalMs: 0 }));
    try {
      await storage.migrate();
      await fillTheDisk(storage);
      const failure = await storage
        .transaction(async (trx) => {
          await trx.insertInto('blocks').values(bigBlock('agent-full')).execute();
        })
        .then(
          () => null,
          (error: unknown) => error,
        );
      assert.equal((failure as { code?: string } | null)?.code, 'SQLITE_FULL');
      assert.equal(isStorageFailure(failure), true);
      assert.equal(await storage.writesSucceed(), false, 'the probe fails too: still full');
      assert.equal(await storage.writesSucceed(), false);
      await freeSpace(storage);
      assert.equal(await storage.writesSucceed(), true, 'the probe commits once there is space');
      await storage.transaction(async (trx) => {
        await trx.insertInto('blocks').values(bigBlock('agent-after')).execute();
      });
      assert.equal(
        (await storage.db.selectFrom('blocks').select('patient_agent_id').execute()).length,
        1,
        'only the write after the space was freed',
      );
    } finally {
      await storage.close();
    }
  });

  it('starting on a full disk: STORAGE_FULL, free space, never "move the file aside"', async () => {
    const storage = await openStorage(sqliteOptions(freshFile()));
    try {
      // A new file with room for one page: the first migration cannot be written.
      await sql.raw('PRAGMA max_page_count = 1').execute(storage.db);
      await assert.rejects(storage.migrate(), (error: unknown) => {
        assert.ok(error instanceof StorageError);
        assert.equal(error.code, 'STORAGE_FULL');
        assert.match(
          error.message,
          /^STORAGE_FULL: no space to write the database .*neuron\.sqlite \(database or disk is full\); free space on that file system/,
        );
        assert.match(error.message, /the records are intact, do not delete or move the file aside/);
        return true;
      });
    } finally {
      await storage.close();
    }
  });

  it('isStorageFailure: disk, I/O, read-only and corruption codes, through wrappers; not constraints or busy', () => {
    for (const code of [
      'SQLITE_FULL',
      'SQLITE_IOERR_WRITE',
      'SQLITE_READONLY',
      'SQLITE_CORRUPT',
      'ENOSPC',
      'EIO',
      '53100',
      '58030',
      'XX001',
      '25006',
    ]) {
      assert.equal(isStorageFailure(Object.assign(new Error('x'), { code })), true, code);
    }
    for (const code of ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_BUSY', '23505', '40001', undefined]) {
      assert.equal(isStorageFailure(Object.assign(new Error('x'), { code })), false, String(code));
    }
    assert.equal(isStorageFailure(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'SQLITE_FULL' }) })), true);
  });
});

describe('a damaged SQLite file at start', () => {
  /** A migrated database with some rows, closed (its WAL checkpointed into the file). */
  async function populatedFile(): Promise<string> {
    const file = freshFile();
    const storage = await openStorage(sqliteOptions(file));
    await storage.migrate();
    for (let i = 0; i < 40; i++)
      await storage.db
        .insertInto('blocks')
        .values(bigBlock(`agent-${i}`))
        .execute();
    await storage.close();
    return file;
  }

  it('a page overwritten with garbage is found by quick_check: STORAGE_CORRUPT, restore from a backup', async () => {
    const original = await populatedFile();
    const damaged = path.join(path.dirname(original), 'damaged.sqlite');
    copyFileSync(original, damaged);
    const size = statSync(damaged).size;
    const pageSize = 4_096;
    // A page in the middle of the file (a b-tree page of the blocks table), not the header.
    const page = Math.floor(size / pageSize / 2);
    const fd = openSync(damaged, 'r+');
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, page * pageSize);
    closeSync(fd);

    await assert.rejects(openStorage(sqliteOptions(damaged)), (error: unknown) => {
      assert.ok(error instanceof StorageError, String(error));
      assert.equal(error.code, 'STORAGE_CORRUPT');
      assert.match(error.message, /^STORAGE_CORRUPT: the database .*damaged\.sqlite failed its integrity check \(PRAGMA quick_check: /);
      assert.match(error.message, /restore the database from a backup \(docs\/deployment\.md/);
      assert.match(error.message, /do not delete or move the file aside/);
      return true;
    });
    // The undamaged original opens: the check itself does not refuse sound files.
    const sound = await openStorage(sqliteOptions(original));
    await sound.close();
    // Turned off (storage.sqlite_quick_check = false for very large files), the start goes on.
    const unchecked = await openStorage(sqliteOptions(damaged, { sqliteQuickCheck: false }));
    await unchecked.close();
  });

  it('a file that is not a database: STORAGE_CORRUPT with the restore advice, never "move it aside"', async () => {
    const file = freshFile();
    const fd = openSync(file, 'w');
    writeSync(fd, 'this is not a database, only some synthetic text that fills more than one header. '.repeat(20));
    closeSync(fd);
    await assert.rejects(openStorage(sqliteOptions(file)), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'STORAGE_CORRUPT');
      assert.match(error.message, /restore the database from a backup/);
      assert.match(error.message, /do not delete or move the file aside/);
      return true;
    });
  });
});
