import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RepeatedErrorLog, errorIdentity, type ErrorLogger } from './repeated-errors.ts';

interface Line {
  fields: Record<string, unknown>;
  message: string;
}

function capture(): { logger: ErrorLogger; lines: Line[] } {
  const lines: Line[] = [];
  return { lines, logger: { error: (fields, message) => void lines.push({ fields, message }) } };
}

function diskFull(): Error {
  return Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
}

/** Waits until `lines` has `count` entries; the interval timers fire on their own. */
async function until(lines: Line[], count: number): Promise<void> {
  for (let waited = 0; lines.length < count && waited < 5_000; waited += 10) await sleep(10);
}

describe('RepeatedErrorLog', () => {
  it('logs the first occurrence in full, then one "N more like this" line per interval', async () => {
    const { logger, lines } = capture();
    const log = new RepeatedErrorLog({ logger, intervalMs: 100 });
    for (let i = 0; i < 25; i++) log.error(diskFull(), { session: `s${i}` }, 'handshake failed unexpectedly');
    assert.equal(lines.length, 1, 'only the first of 25 identical errors is written at once');
    assert.equal(lines[0]!.message, 'handshake failed unexpectedly');
    assert.equal(lines[0]!.fields['session'], 's0');
    assert.ok(lines[0]!.fields['err'] instanceof Error, 'the first line carries the error itself');

    await until(lines, 2);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.message, 'handshake failed unexpectedly: 24 more like this in the last 0.1 s');
    assert.equal(lines[1]!.fields['repeated'], 24);
    assert.equal(lines[1]!.fields['error'], 'SQLITE_FULL: database or disk is full');

    // Still failing: the next interval is summarised too, never logged one by one.
    log.error(diskFull(), {}, 'handshake failed unexpectedly');
    log.error(diskFull(), {}, 'handshake failed unexpectedly');
    await until(lines, 3);
    assert.equal(lines[2]!.fields['repeated'], 2);

    // A whole quiet interval: the next occurrence is news again and is logged in full.
    await sleep(250);
    assert.equal(lines.length, 3, 'nothing to summarise, no line');
    log.error(diskFull(), { session: 'later' }, 'handshake failed unexpectedly');
    assert.equal(lines.length, 4);
    assert.equal(lines[3]!.fields['session'], 'later');
    log.close();
  });

  it('counts different errors and different messages apart', () => {
    const { logger, lines } = capture();
    const log = new RepeatedErrorLog({ logger, intervalMs: 60_000 });
    log.error(diskFull(), {}, 'unexpected error');
    log.error(new Error('no such table: outbox'), {}, 'unexpected error');
    log.error(diskFull(), {}, 'could not write the handshake.failed audit entry');
    log.error(diskFull(), {}, 'unexpected error');
    assert.deepEqual(
      lines.map((l) => l.message),
      ['unexpected error', 'unexpected error', 'could not write the handshake.failed audit entry'],
    );
    // Closing summarises what was counted, so nothing counted is lost at shutdown.
    log.close();
    assert.equal(lines.length, 4);
    assert.match(lines[3]!.message, /^unexpected error: 1 more like this/);
  });

  it('identifies an error by its code (or class) and message', () => {
    assert.equal(errorIdentity(diskFull()), 'SQLITE_FULL: database or disk is full');
    assert.equal(errorIdentity(new TypeError('x')), 'TypeError: x');
    assert.equal(errorIdentity('text'), 'text');
  });
});
