/**
 * Plain Statements (src/foundation/storage/statements.ts) on SQLite's shared handle: run directly
 * while no transaction is open, queued behind an open one so they never see its uncommitted writes.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStorage } from '../../src/foundation/storage/index.ts';
import { Statement } from '../../src/foundation/storage/statements.ts';

const COUNT_BLOCKS = new Statement('SELECT count(*) AS n FROM blocks');
const at = '2026-12-03T13:00:00.000Z';

it('a read on the shared SQLite handle sees committed rows only, and waits for an open transaction', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-statements-')), 'neuron.sqlite');
  const storage = await openStorage({ url: '', sqliteFile: file, sqliteSynchronous: 'FULL', busyTimeoutMs: 100, poolMax: 1 });
  await storage.migrate();
  const count = async (): Promise<number> => Number((await COUNT_BLOCKS.execute<{ n: number }>(storage.db, [])).rows[0]!.n);
  try {
    assert.equal(await count(), 0);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const wrote = new Promise<void>((resolve) => (written = resolve));
    const transaction = storage.transaction(async (trx) => {
      await trx.insertInto('blocks').values({ patient_agent_id: 'agent-open', reason: null, blocked_by: 'test', created_at: at }).execute();
      written();
      // Holds the transaction open across a turn of the event loop (only a test does this).
      await held;
    });
    await wrote;
    const whileOpen = count();
    const settled = await Promise.race([whileOpen.then(() => 'answered'), new Promise((resolve) => setTimeout(resolve, 50, 'waiting'))]);
    assert.equal(settled, 'waiting', 'the read waits for the open transaction');
    release();
    await transaction;
    assert.equal(await whileOpen, 1, 'it then sees the committed row');
    assert.equal(await count(), 1);
  } finally {
    await storage.close();
  }
});
