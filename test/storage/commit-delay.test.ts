/**
 * storage.sqlite_commit_delay_ms and storage.sqlite_commit_siblings: a groupTransaction unit
 * whose caller says enough others are on their way waits for them to share its commit; one that
 * is alone, a full group and a closing storage do not wait.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { openStorage, type Storage } from '../../src/foundation/storage/index.ts';

/** Longer than any test here may take (TEST_TIMEOUT_MS): a unit that waited this long fails its test. */
const NEVER_MS = 60_000;
const TEST_TIMEOUT_MS = 20_000;

interface Opened {
  storage: Storage;
  file: string;
  /** Blocks committed so far, read through a second connection (it sees committed data only). */
  committed: () => number;
}

async function open(t: TestContext, options: { delayMs: number; siblings: number; batchMax?: number }): Promise<Opened> {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-commit-delay-')), 'neuron.sqlite');
  const storage = await openStorage({
    url: '',
    sqliteFile: file,
    sqliteSynchronous: 'FULL',
    busyTimeoutMs: 100,
    poolMax: 1,
    sqliteCommitDelayMs: options.delayMs,
    sqliteCommitSiblings: options.siblings,
    ...(options.batchMax === undefined ? {} : { sqliteCommitBatchMax: options.batchMax }),
  });
  await storage.migrate();
  const reader = new BetterSqlite3(file, { readonly: true });
  t.after(async () => {
    reader.close();
    await storage.close();
  });
  return { storage, file, committed: () => (reader.prepare('SELECT count(*) AS n FROM blocks').get() as { n: number }).n };
}

/** A unit that blocks `id` and answers how many blocks were committed when it ran. */
function blockUnit(opened: Opened, id: string, othersComing: number): Promise<number> {
  return opened.storage.groupTransaction(
    async (trx) => {
      const before = opened.committed();
      await trx
        .insertInto('blocks')
        .values({ patient_agent_id: id, reason: null, blocked_by: 'test', created_at: new Date().toISOString() })
        .execute();
      return before;
    },
    { othersComing: () => othersComing },
  );
}

const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('groupTransaction with a commit delay (SQLite)', { timeout: TEST_TIMEOUT_MS }, () => {
  it('a unit with enough others on their way waits for one arriving in a later turn, and they share the commit', async (t) => {
    const opened = await open(t, { delayMs: 300, siblings: 2 });
    let firstSettled = false;
    const first = blockUnit(opened, 'agent-a', 5).finally(() => (firstSettled = true));
    // Well inside the delay, in a turn of its own (a timer, not the same I/O callbacks).
    await later(20);
    assert.equal(firstSettled, false, 'the first unit is still waiting for the others');
    const second = blockUnit(opened, 'agent-b', 5);
    // Both ran before anything was committed: one commit serves them.
    assert.deepEqual(await Promise.all([first, second]), [0, 0]);
    assert.equal(opened.committed(), 2);
  });

  it('a unit with fewer others on their way than storage.sqlite_commit_siblings commits at once', async (t) => {
    const opened = await open(t, { delayMs: NEVER_MS, siblings: 4 });
    assert.equal(await blockUnit(opened, 'agent-a', 3), 0);
    assert.equal(opened.committed(), 1);
  });

  it('a unit that finds few others coming commits those already waiting with it', async (t) => {
    const opened = await open(t, { delayMs: NEVER_MS, siblings: 2 });
    const waiting = blockUnit(opened, 'agent-a', 5);
    await later(20);
    // The last of the expected ones: nothing more to wait for.
    const last = blockUnit(opened, 'agent-b', 0);
    assert.deepEqual(await Promise.all([waiting, last]), [0, 0]);
    assert.equal(opened.committed(), 2);
  });

  it('a unit waits at the rate units arrived lately, even when its caller counts none coming', async (t) => {
    const opened = await open(t, { delayMs: 100, siblings: 2 });
    // A burst, one unit per turn: the recent rate now expects many within the delay.
    const burst: Promise<number>[] = [];
    for (let i = 0; i < 100; i += 1) {
      burst.push(blockUnit(opened, `agent-burst-${i}`, 0));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(burst);
    let firstSettled = false;
    const first = blockUnit(opened, 'agent-a', 0).finally(() => (firstSettled = true));
    await later(20);
    assert.equal(firstSettled, false, 'waiting, at the rate of the burst');
    assert.deepEqual(await Promise.all([first, blockUnit(opened, 'agent-b', 0)]), [100, 100], 'one commit for both');
  });

  it('a full group (storage.sqlite_commit_batch_max) commits without waiting', async (t) => {
    const opened = await open(t, { delayMs: NEVER_MS, siblings: 1, batchMax: 2 });
    const first = blockUnit(opened, 'agent-a', 5);
    await later(20);
    assert.deepEqual(await Promise.all([first, blockUnit(opened, 'agent-b', 5)]), [0, 0]);
    assert.equal(opened.committed(), 2);
  });

  it('with storage.sqlite_commit_delay_ms 0 nobody waits', async (t) => {
    const opened = await open(t, { delayMs: 0, siblings: 1 });
    assert.equal(await blockUnit(opened, 'agent-a', 1_000), 0);
    assert.equal(opened.committed(), 1);
  });

  it('closing the storage commits the units still waiting, before the connection closes', async (t) => {
    const opened = await open(t, { delayMs: NEVER_MS, siblings: 1 });
    const waiting = blockUnit(opened, 'agent-a', 5);
    await later(20);
    await opened.storage.close();
    assert.equal(await waiting, 0);
    assert.equal(opened.committed(), 1);
  });
});
