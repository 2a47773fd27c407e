/**
 * The Storage contract on every backend: migrations, transactions, locks, ping and close, plus the
 * PostgreSQL specifics (type parsing, connection errors that say what is wrong without the
 * password, schemas named in search_path, migrations from two instances at once).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import BetterSqlite3 from 'better-sqlite3';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStorage, StorageError, type Db, type Storage } from '../../src/foundation/storage/index.ts';
import type { Dialect } from '../../src/foundation/storage/types.ts';
import { MigrationError, pendingMigrations, runMigrations } from '../../src/foundation/storage/migrate.ts';
import { MIGRATIONS } from '../../src/foundation/storage/migration-list.ts';
import { POSTGRES_URL_VARIABLE, testDatabases } from '../helpers/databases.ts';

const EXPECTED_TABLES = [
  'api_keys',
  'audit_checkpoints',
  'audit_log',
  'audit_tree_heads',
  'audit_tree_nodes',
  'blocked_keys',
  'blocks',
  'leases',
  'operator_sessions',
  'operators',
  'organization_keys',
  'outbox',
  'patients',
  'providers',
  'relationships',
  'settings',
  'webhook_subscriptions',
];

/** The tables of this database (on PostgreSQL: of its own schema, not the other tests'). */
async function tableNames(storage: Storage): Promise<string[]> {
  const result =
    storage.dialect === 'postgres'
      ? await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`.execute(
          storage.db,
        )
      : await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`.execute(storage.db);
  return result.rows
    .map((r) => r.name)
    .filter((name) => !name.startsWith('kysely_'))
    .sort();
}

function block(patientAgentId: string): { patient_agent_id: string; reason: null; blocked_by: string; created_at: string } {
  return { patient_agent_id: patientAgentId, reason: null, blocked_by: 'test', created_at: '2026-01-01T00:00:00.000Z' };
}

/** The steps of one dialect, in the order they run; the test below pins that list by name, once. */
function everyMigration(dialect: Dialect): string[] {
  return Object.keys(MIGRATIONS[dialect]);
}

describe('storage (migration list)', () => {
  it('both dialects run the same steps, in this order, one for each migration file', () => {
    // The one place that spells the names: a step missing, misnamed or out of order fails here.
    const expected = [
      '001_initial',
      '002_one_active_organization_key',
      '003_relationships_by_patient',
      '004_audit_tree',
      '005_roster_capabilities_and_key_blocks',
      '006_console_operators',
      '007_audit_by_relationship',
    ];
    for (const dialect of ['sqlite', 'postgres'] as const) {
      assert.deepEqual(everyMigration(dialect), expected, dialect);
      const files = readdirSync(new URL(`../../src/foundation/storage/migrations/${dialect}/`, import.meta.url))
        .map((file) => file.replace(/\.ts$/, ''))
        .sort();
      assert.deepEqual(files, expected, `${dialect}: the files on disk`);
    }
  });
});

for (const backend of testDatabases()) {
  describe(`storage (${backend.name})`, () => {
    it('migrations apply once, create every table, and leave nothing pending', async (t) => {
      const { storage } = await backend.open(t, { migrate: false });
      assert.deepEqual(await storage.pendingMigrations(), everyMigration(backend.name));
      assert.deepEqual(await storage.migrate(), {
        applied: everyMigration(backend.name),
      });
      assert.deepEqual(await storage.pendingMigrations(), []);
      assert.deepEqual(await storage.migrate(), { applied: [] }, 'a second run applies nothing');
      assert.deepEqual(await tableNames(storage), EXPECTED_TABLES);
      assert.equal(storage.dialect, backend.name);
    });

    it('a database migrated by a newer Neuron is refused, not changed', async (t) => {
      const { storage } = await backend.open(t);
      await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(
        storage.db,
      );
      await assert.rejects(storage.pendingMigrations(), /newer Neuron \(unknown steps: 999_from_the_future\)/);
      await assert.rejects(storage.migrate(), (error: unknown) => error instanceof StorageError && /newer Neuron/.test(error.message));
    });

    it('a failing step rolls back the whole run: no half-migrated schema, nothing recorded', async (t) => {
      const { storage } = await backend.open(t, { migrate: false });
      const migrations = {
        '001_a': { up: async (db: Kysely<unknown>) => void (await sql`CREATE TABLE step_a (x INTEGER)`.execute(db)) },
        '002_b': { up: async (db: Kysely<unknown>) => void (await sql`CREATE TABLE step_b (x INTEGER NOT A TYPE)`.execute(db)) },
      };
      const exclusive = <T>(work: (trx: Db) => Promise<T>): Promise<T> => storage.transaction(work);
      await assert.rejects(
        runMigrations({ dialect: storage.dialect, migrations, exclusive }),
        (error: unknown) => error instanceof MigrationError && /migration 002_b failed/.test(error.message),
      );
      assert.deepEqual(await tableNames(storage), [], 'step_a was rolled back with step_b');
      assert.deepEqual(await pendingMigrations(storage.db, { dialect: storage.dialect, migrations }), ['001_a', '002_b']);
      // Fixed, it runs from the start.
      migrations['002_b'] = { up: async (db: Kysely<unknown>) => void (await sql`CREATE TABLE step_b (x INTEGER)`.execute(db)) };
      assert.deepEqual(await runMigrations({ dialect: storage.dialect, migrations, exclusive }), ['001_a', '002_b']);
      assert.deepEqual(await tableNames(storage), ['step_a', 'step_b']);
    });

    it('a committed transaction keeps all its writes; a failed one keeps none', async (t) => {
      const { storage } = await backend.open(t);
      const value = await storage.transaction(async (trx) => {
        await trx.insertInto('blocks').values(block('agent-a')).execute();
        await trx.insertInto('blocks').values(block('agent-b')).execute();
        return 'done';
      });
      assert.equal(value, 'done');

      await assert.rejects(
        storage.transaction(async (trx) => {
          await trx.insertInto('blocks').values(block('agent-c')).execute();
          await trx.insertInto('settings').values({ name: 'x', value: 'y', updated_at: '2026-01-01T00:00:00.000Z' }).execute();
          throw new Error('boom after two writes');
        }),
        /boom after two writes/,
      );

      // A statement that fails inside the transaction (a duplicate key) undoes the earlier one too.
      await assert.rejects(
        storage.transaction(async (trx) => {
          await trx.insertInto('blocks').values(block('agent-d')).execute();
          await trx.insertInto('blocks').values(block('agent-a')).execute();
        }),
      );

      const blocked = (await storage.db.selectFrom('blocks').select('patient_agent_id').orderBy('patient_agent_id').execute()).map(
        (r) => r.patient_agent_id,
      );
      assert.deepEqual(blocked, ['agent-a', 'agent-b']);
      assert.equal((await storage.db.selectFrom('settings').selectAll().execute()).length, 0);
      // The connection is usable again after the rollbacks.
      await storage.transaction(async (trx) => trx.insertInto('blocks').values(block('agent-e')).execute());
      assert.equal((await storage.db.selectFrom('blocks').select('patient_agent_id').execute()).length, 3);
    });

    it('uncommitted writes are invisible to other connections until commit', async (t) => {
      const database = await backend.open(t);
      if (database.backend === 'sqlite') {
        // One connection per file and process: there is no other connection to look from, and
        // the transaction holds the only one. What we can check is that the commit is complete.
        await database.storage.transaction(async (trx) => trx.insertInto('blocks').values(block('agent-a')).execute());
        assert.equal((await database.storage.db.selectFrom('blocks').selectAll().execute()).length, 1);
        return;
      }
      const peer = await database.openPeer();
      let seenInside = -1;
      await database.storage.transaction(async (trx) => {
        await trx.insertInto('blocks').values(block('agent-a')).execute();
        seenInside = (await peer.db.selectFrom('blocks').selectAll().execute()).length;
      });
      assert.equal(seenInside, 0);
      assert.equal((await peer.db.selectFrom('blocks').selectAll().execute()).length, 1);
    });

    it('lock() refuses to run outside a transaction, and works inside one', async (t) => {
      const { storage } = await backend.open(t);
      await assert.rejects(
        storage.lock(storage.db, 'audit_chain'),
        (error: unknown) => error instanceof StorageError && /open storage\.transaction/.test(error.message),
      );
      await storage.transaction(async (trx) => {
        await storage.lock(trx, 'audit_chain');
        await storage.lock(trx, 'audit_chain'); // re-entrant within one transaction
      });
      // The handle of a finished transaction no longer counts.
      let finished: Parameters<Parameters<Storage['transaction']>[0]>[0] | undefined;
      await storage.transaction(async (trx) => {
        finished = trx;
      });
      await assert.rejects(storage.lock(finished!, 'audit_chain'), StorageError);
    });

    it('count(*) and BIGINT columns come back as numbers', async (t) => {
      const { storage } = await backend.open(t);
      for (const id of ['agent-a', 'agent-b', 'agent-c']) await storage.db.insertInto('blocks').values(block(id)).execute();
      const count = await storage.db
        .selectFrom('blocks')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(count.n, 3);
      await storage.db
        .insertInto('audit_log')
        .values({ seq: 2 ** 40, occurred_at: 'x', event_type: 'x', actor: 'x', details: '{}', prev_hash: 'x', hash: 'x' })
        .execute();
      const row = await storage.db.selectFrom('audit_log').select('seq').executeTakeFirstOrThrow();
      assert.equal(row.seq, 2 ** 40);
      assert.equal(typeof row.seq, 'number');
    });

    it('ping answers, and close is graceful and idempotent', async (t) => {
      const database = await backend.open(t);
      await database.storage.ping();
      await database.storage.close();
      await database.storage.close();
      await assert.rejects(database.storage.ping());
    });

    it('close waits for a transaction in flight to finish', async (t) => {
      const database = await backend.open(t);
      const storage = database.backend === 'postgres' ? await openStorage(database.options) : database.storage;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const inFlight = storage.transaction(async (trx) => {
        await trx.insertInto('blocks').values(block('agent-a')).execute();
        await gate;
        await trx.insertInto('blocks').values(block('agent-b')).execute();
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closing = storage.close();
      release();
      await inFlight;
      await closing;
      const reader = database.backend === 'postgres' ? database.storage : await openStorage(database.options);
      assert.equal((await reader.db.selectFrom('blocks').selectAll().execute()).length, 2, 'the transaction committed before close');
      if (reader !== database.storage) await reader.close();
    });

    it('groupTransaction: units queued together each get their own result; a failing unit rolls back alone', async (t) => {
      const database = await backend.open(t);
      const { storage } = database;
      // Committed before the units: the third unit's duplicate is of this row, so it fails whatever
      // the order (on PostgreSQL each unit is its own transaction, and they run concurrently).
      await storage.db.insertInto('blocks').values(block('agent-z')).execute();
      const settled = await Promise.allSettled([
        storage.groupTransaction(async (trx) => {
          await trx.insertInto('blocks').values(block('agent-a')).execute();
          return 'first';
        }),
        storage.groupTransaction(async (trx) => {
          await trx.insertInto('blocks').values(block('agent-b')).execute();
          throw new Error('the second unit fails after a write');
        }),
        // A failing statement (duplicate key) undoes the unit's earlier write too, and nothing else.
        storage.groupTransaction(async (trx) => {
          await trx.insertInto('blocks').values(block('agent-c')).execute();
          await trx.insertInto('blocks').values(block('agent-z')).execute();
        }),
        storage.groupTransaction(async (trx) => {
          await trx.insertInto('blocks').values(block('agent-d')).execute();
          return (await trx.selectFrom('blocks').select('patient_agent_id').orderBy('patient_agent_id').execute()).map(
            (r) => r.patient_agent_id,
          );
        }),
      ]);
      assert.deepEqual(settled[0], { status: 'fulfilled', value: 'first' });
      assert.equal(settled[1].status, 'rejected');
      assert.match(String((settled[1] as PromiseRejectedResult).reason), /the second unit fails after a write/);
      assert.equal(settled[2].status, 'rejected');
      assert.equal(settled[3].status, 'fulfilled');
      const seenByFourth = (settled[3] as PromiseFulfilledResult<string[]>).value;
      if (database.backend === 'sqlite') {
        // One shared commit, units run in order: the first unit's write is visible, the failed ones' are not.
        assert.deepEqual(seenByFourth, ['agent-a', 'agent-d', 'agent-z']);
      } else {
        // Separate concurrent transactions: whether the first has committed yet is a matter of timing,
        // but a failed unit's writes are never visible.
        assert.ok(seenByFourth.includes('agent-d') && seenByFourth.includes('agent-z'), String(seenByFourth));
        assert.ok(!seenByFourth.includes('agent-b') && !seenByFourth.includes('agent-c'), String(seenByFourth));
      }
      const blocked = (await storage.db.selectFrom('blocks').select('patient_agent_id').orderBy('patient_agent_id').execute()).map(
        (r) => r.patient_agent_id,
      );
      assert.deepEqual(blocked, ['agent-a', 'agent-d', 'agent-z']);
      // Alone, a unit that fails leaves nothing either, and the connection is usable afterwards.
      await assert.rejects(
        storage.groupTransaction(async (trx) => {
          await trx.insertInto('blocks').values(block('agent-e')).execute();
          throw new Error('alone and failing');
        }),
        /alone and failing/,
      );
      assert.equal(await storage.groupTransaction(async (trx) => (await trx.selectFrom('blocks').selectAll().execute()).length), 3);
    });
  });
}

describe('storage (sqlite specifics)', () => {
  it('a file that is not a SQLite database is refused with the remedy', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-storage-')), 'neuron.sqlite');
    writeFileSync(file, 'this is not a database, only some synthetic text that fills more than one header. '.repeat(20));
    await assert.rejects(
      openStorage({ url: '', sqliteFile: file, sqliteSynchronous: 'FULL', busyTimeoutMs: 100, poolMax: 1 }),
      (error: unknown) => {
        assert.ok(error instanceof StorageError, 'a StorageError');
        assert.match(error.message, /^STORAGE_CORRUPT: the database .*neuron\.sqlite is damaged .*restore the database from a backup/);
        return true;
      },
    );
  });

  it('groupTransaction: units queued in one turn share one commit, at most sqliteCommitBatchMax of them', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-storage-')), 'neuron.sqlite');
    const storage = await openStorage({
      url: '',
      sqliteFile: file,
      sqliteSynchronous: 'FULL',
      busyTimeoutMs: 100,
      poolMax: 1,
      sqliteCommitBatchMax: 2,
    });
    await storage.migrate();
    // A second connection sees only committed data (WAL snapshot per read).
    const reader = new BetterSqlite3(file, { readonly: true });
    const committed = (): number => (reader.prepare('SELECT count(*) AS n FROM blocks').get() as { n: number }).n;
    try {
      const seen = await Promise.all(
        ['agent-a', 'agent-b', 'agent-c'].map((id) =>
          storage.groupTransaction(async (trx) => {
            const before = committed();
            await trx.insertInto('blocks').values(block(id)).execute();
            return before;
          }),
        ),
      );
      // a and b share the first commit (b saw nothing committed yet); c is in the next group and
      // saw both committed. Every caller was answered after its own commit.
      assert.deepEqual(seen, [0, 0, 2]);
      assert.equal(committed(), 3);
    } finally {
      reader.close();
      await storage.close();
    }
  });

  it('groupTransaction: a unit failing before it wrote is left out; one failing after a write reruns the group with savepoints', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-storage-')), 'neuron.sqlite');
    const storage = await openStorage({ url: '', sqliteFile: file, sqliteSynchronous: 'FULL', busyTimeoutMs: 100, poolMax: 1 });
    await storage.migrate();
    const runs = new Map<string, number>();
    const unit = (id: string, fail: 'before write' | 'after write' | null) =>
      storage.groupTransaction(async (trx) => {
        runs.set(id, (runs.get(id) ?? 0) + 1);
        if (fail === 'before write') throw new Error(`${id} refused before writing`);
        await trx.insertInto('blocks').values(block(id)).execute();
        if (fail === 'after write') throw new Error(`${id} failed after writing`);
        return id;
      });
    const ids = async (): Promise<string[]> =>
      (await storage.db.selectFrom('blocks').select('patient_agent_id').orderBy('patient_agent_id').execute()).map(
        (r) => r.patient_agent_id,
      );
    try {
      // Refused before any write: the others run once, in one transaction without savepoints.
      const first = await Promise.allSettled([unit('agent-a', null), unit('agent-b', 'before write'), unit('agent-c', null)]);
      assert.deepEqual(
        first.map((s) => s.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.match(String((first[1] as PromiseRejectedResult).reason), /agent-b refused before writing/);
      assert.deepEqual(Object.fromEntries(runs), { 'agent-a': 1, 'agent-b': 1, 'agent-c': 1 });
      assert.deepEqual(await ids(), ['agent-a', 'agent-c']);
      // Failing after a write: that transaction is rolled back at once (agent-f had not run yet) and
      // every unit runs again, each in its own savepoint.
      runs.clear();
      const second = await Promise.allSettled([unit('agent-d', null), unit('agent-e', 'after write'), unit('agent-f', null)]);
      assert.deepEqual(
        second.map((s) => s.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.match(String((second[1] as PromiseRejectedResult).reason), /agent-e failed after writing/);
      assert.deepEqual(Object.fromEntries(runs), { 'agent-d': 2, 'agent-e': 2, 'agent-f': 1 });
      assert.deepEqual(await ids(), ['agent-a', 'agent-c', 'agent-d', 'agent-f']);
    } finally {
      await storage.close();
    }
  });

  it('runs in WAL mode with the configured synchronous level', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-storage-')), 'neuron.sqlite');
    const storage = await openStorage({ url: '', sqliteFile: file, sqliteSynchronous: 'FULL', busyTimeoutMs: 100, poolMax: 1 });
    try {
      const mode = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(storage.db);
      assert.equal(mode.rows[0]!.journal_mode, 'wal');
      const sync = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(storage.db);
      assert.equal(sync.rows[0]!.synchronous, 2, 'FULL');
    } finally {
      await storage.close();
    }
  });
});

/** A TCP relay in front of the PostgreSQL server that a test can cut, as a network outage would. */
async function startRelay(
  t: { after(fn: () => void | Promise<void>): void },
  serverUrl: string,
): Promise<{ url: string; port: number; cut(): Promise<void> }> {
  const target = new URL(serverUrl);
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const port = (relay.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  const cut = async (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      relay.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return closed;
  };
  t.after(cut);
  return { url: withPort(serverUrl, port), port, cut };
}

function withPort(url: string, port: number): string {
  const changed = new URL(url);
  changed.port = String(port);
  return changed.toString();
}

const postgresUrl = process.env[POSTGRES_URL_VARIABLE];
if (postgresUrl) {
  const postgres = testDatabases().find((b) => b.name === 'postgres')!;
  const base = { sqliteFile: '', sqliteSynchronous: 'FULL' as const, busyTimeoutMs: 1_000, poolMax: 2 };
  const password = decodeURIComponent(new URL(postgresUrl).password);

  const refusal = async (url: string, pattern: RegExp, extra: Partial<Parameters<typeof openStorage>[0]> = {}): Promise<void> => {
    await assert.rejects(openStorage({ ...base, url, ...extra }), (error: unknown) => {
      assert.ok(error instanceof StorageError, `expected StorageError, got ${String(error)}`);
      assert.match(error.message, pattern);
      const everything = `${error.message} ${error.stack ?? ''} ${JSON.stringify(error)} ${String(error.cause ?? '')}`;
      assert.ok(!everything.includes(password), 'the password never appears');
      return true;
    });
  };

  describe('storage (postgres specifics)', () => {
    it('a wrong port, password or database fails at open with a clear StorageError, never the password', async () => {
      const url = new URL(postgresUrl);
      const wrongPort = new URL(url);
      wrongPort.port = '1';
      await refusal(
        wrongPort.toString(),
        /^cannot reach PostgreSQL at 127\.0\.0\.1:1\/neuron_test: connection refused .*; check storage\.url$/,
      );

      const wrongPassword = new URL(url);
      wrongPassword.password = `${password}-wrong`;
      await assert.rejects(openStorage({ ...base, url: wrongPassword.toString() }), (error: unknown) => {
        assert.ok(error instanceof StorageError, 'a StorageError');
        assert.match(
          error.message,
          /^cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/neuron_test: password authentication failed; check storage\.url$/,
        );
        assert.equal(error.message.includes(`${password}-wrong`), false, 'no password');
        return true;
      });

      const wrongDatabase = new URL(url);
      wrongDatabase.pathname = '/no_such_database';
      await refusal(wrongDatabase.toString(), /no_such_database: the database does not exist; check storage\.url/);
    });

    it('a server that never answers fails within the connect timeout instead of hanging', async (t) => {
      // A listener that accepts connections and says nothing, like a black-holed address.
      const sockets: Socket[] = [];
      const silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      t.after(() => {
        for (const socket of sockets) socket.destroy();
        silent.close();
      });
      const url = new URL(postgresUrl);
      url.port = String((silent.address() as AddressInfo).port);
      const started = Date.now();
      await refusal(
        url.toString(),
        /^cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/neuron_test: no connection within 300 ms; check storage\.url$/,
        { connectTimeoutMs: 300 },
      );
      assert.ok(Date.now() - started < 5_000, 'gave up in time');
    });

    it('a malformed or non-postgres URL is refused without echoing it', async () => {
      await refusal(`postgres://user:${password}@[bad-host/db`, /^storage\.url is not a valid URL/);
      await refusal(`mysql://user:${password}@localhost/db`, /must start with postgres:\/\//);
    });

    it('a search_path naming a missing schema is refused with the reason', async () => {
      const url = new URL(postgresUrl);
      url.searchParams.set('options', '-c search_path=no_such_schema');
      await refusal(url.toString(), /search_path do not exist/);
    });

    it('the description names host, port, database and schema but no credentials', async (t) => {
      const { storage } = await postgres.open(t);
      assert.match(storage.description, /^PostgreSQL 127\.0\.0\.1:\d+\/neuron_test \(schema neuron_t_\w+\)$/);
      assert.equal(storage.description.includes(password), false, 'no password');
    });

    it('migrations keep their bookkeeping in the schema of search_path, beside tables of other schemas', async (t) => {
      // Two databases in one PostgreSQL database, in two schemas: each migrates on its own.
      const first = await postgres.open(t, { migrate: false });
      const second = await postgres.open(t, { migrate: false });
      assert.deepEqual(await first.storage.migrate(), {
        applied: everyMigration('postgres'),
      });
      assert.deepEqual(await second.storage.pendingMigrations(), everyMigration('postgres'));
      assert.deepEqual(await second.storage.migrate(), {
        applied: everyMigration('postgres'),
      });
      assert.deepEqual(await second.storage.pendingMigrations(), []);
    });

    it('two instances migrating the same empty database at once both succeed, once', async (t) => {
      const database = await postgres.open(t, { migrate: false });
      const peers = [database.storage, await database.openPeer(), await database.openPeer()];
      const results = await Promise.all(peers.map((p) => p.migrate()));
      assert.deepEqual(
        results.flatMap((r) => r.applied),
        everyMigration('postgres'),
      );
      for (const p of peers) assert.deepEqual(await p.pendingMigrations(), []);
    });

    it('a BIGINT beyond exact JavaScript integers fails the query instead of losing precision', async (t) => {
      const { storage } = await postgres.open(t);
      await assert.rejects(sql`SELECT 9007199254740993::bigint AS n`.execute(storage.db), /beyond JavaScript's exact integer range/);
      const fine = await sql<{ n: number }>`SELECT 9007199254740991::bigint AS n`.execute(storage.db);
      assert.equal(fine.rows[0]!.n, Number.MAX_SAFE_INTEGER);
    });

    it("pg's global type parsers are left alone", async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        const result = await client.query<{ n: unknown }>('SELECT 1::bigint AS n');
        assert.equal(result.rows[0]!.n, '1', 'other pg users in the process still get strings');
      } finally {
        await client.end();
      }
    });

    it('ping through a connection that went away says where and why, without the password', async (t) => {
      const relay = await startRelay(t, postgresUrl);
      const storage = await openStorage({ ...base, url: relay.url, onBackgroundError: () => undefined });
      t.after(() => storage.close());
      await storage.ping();
      await relay.cut();
      for (let attempt = 0; attempt < 2; attempt++) {
        // The first ping may still pick the pooled connection that was just cut; the second dials anew.
        await assert.rejects(storage.ping(), (error: unknown) => {
          assert.ok(error instanceof StorageError, `a StorageError, got ${String(error)}`);
          assert.match(
            error.message,
            /^cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/neuron_test: (connection refused|the connection was lost) .*; check storage\.url$/,
          );
          assert.equal(error.message.includes(password), false, 'no password');
          return true;
        });
      }
    });

    it('a connection lost in the middle of a transaction fails that transaction, not the process', async (t) => {
      const relay = await startRelay(t, postgresUrl);
      const database = await postgres.open(t);
      const storage = await openStorage({
        ...database.options,
        url: withPort(database.options.url, relay.port),
        onBackgroundError: () => undefined,
      });
      t.after(() => storage.close());
      let cut!: () => void;
      const cutDone = new Promise<void>((resolve) => {
        cut = resolve;
      });
      const transaction = storage.transaction(async (trx) => {
        await trx.insertInto('blocks').values(block('agent-a')).execute();
        await relay.cut();
        cut();
        await trx.insertInto('blocks').values(block('agent-b')).execute();
      });
      await cutDone;
      await assert.rejects(transaction, /Connection terminated|connection/i);
      assert.equal((await database.storage.db.selectFrom('blocks').selectAll().execute()).length, 0, 'nothing half-written');
    });

    it('ping after the server ends our connections recovers through a fresh one', async (t) => {
      const database = await postgres.open(t, { poolMax: 1 });
      await database.storage.ping();
      const backgroundErrors: string[] = [];
      const storage = await openStorage({
        ...database.options,
        poolMax: 1,
        onBackgroundError: (error) => backgroundErrors.push(error.message),
      });
      t.after(() => storage.close());
      await storage.ping();
      const pid = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(storage.db)).rows[0]!.pid;
      await sql`SELECT pg_terminate_backend(${pid})`.execute(database.storage.db);
      // The idle connection's failure is reported (not a crash), and the next query reconnects.
      for (let i = 0; i < 50 && backgroundErrors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(backgroundErrors.length, 1);
      assert.match(backgroundErrors[0]!, /idle PostgreSQL connection failed/);
      assert.equal(backgroundErrors[0]!.includes(password), false, 'no password');
      await storage.ping();
    });
  });
}
