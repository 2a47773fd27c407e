/**
 * A running Neuron on a full disk: `/health/ready` answers 503 (check `database_writes`) while
 * commits fail, every handshake fails with SERVER_ERROR and the log carries one full line about it
 * (later identical failures are summarised), and once space is freed readiness recovers by itself.
 *
 * The full disk is SQLite's `PRAGMA max_page_count` capped at the file's current size. A trigger
 * makes every relationship written need new pages (as on a disk whose free pages are used up), so
 * the handshake's commit fails with SQLITE_FULL deterministically rather than when a page happens
 * to be full.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { createLogger } from '../../src/foundation/observability/logger.ts';
import { insertProvider, startTestNeuron, type TestNeuron } from '../helpers/neuron.ts';
import { authenticate, challengeResponse, newPatient, openRaw } from '../helpers/raw-handshake.ts';
import { eventually } from '../helpers/records.ts';

const PROVIDER = '1679576722';
let t: TestNeuron;
const lines: string[] = [];

before(async () => {
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  t = await startTestNeuron({
    // 0: every readiness request may probe, so the test need not wait for the 5 s default.
    config: { storage: { write_probe_interval_ms: 0 } },
    neuronOptions: { logger: createLogger({ level: 'error', pretty: 'never', destination }) },
  });
  await insertProvider(t.neuron, { npi: PROVIDER });
});
after(async () => t.stop());

async function ready(): Promise<{ status: number; body: { status: string; checks?: string[] } }> {
  const response = await fetch(`${t.url}/health/ready`);
  return { status: response.status, body: (await response.json()) as { status: string; checks?: string[] } };
}

/** One complete handshake attempt; the first frame after the challenge response. */
async function handshake(label: string): Promise<{ type: string; code?: unknown; close: number }> {
  const patient = newPatient(`full-disk-${label}-${process.pid}`);
  const raw = await openRaw(t.handshakeUrl);
  const challenge = await authenticate(raw, patient, PROVIDER);
  raw.send(challengeResponse(patient, challenge.nonce as string));
  const frame = await raw.next();
  raw.ws.close();
  return { type: frame.type, code: frame.code, close: (await raw.closed).code };
}

describe('a full disk', () => {
  test('ready says not ready while commits fail, handshakes fail with SERVER_ERROR, one log line, then recovery', async () => {
    const db = t.neuron.storage.db;
    assert.deepEqual(await ready(), { status: 200, body: { status: 'ok' } });

    await sql`CREATE TABLE test_filler (filler BLOB)`.execute(db);
    await sql`CREATE TRIGGER test_grow AFTER INSERT ON relationships BEGIN INSERT INTO test_filler VALUES (randomblob(16384)); END`.execute(
      db,
    );
    const pages = await sql<{ page_count: number }>`PRAGMA page_count`.execute(db);
    await sql.raw(`PRAGMA max_page_count = ${pages.rows[0]!.page_count}`).execute(db);

    for (const attempt of ['a', 'b', 'c']) {
      const answer = await handshake(attempt);
      assert.equal(answer.type, 'handshake.error');
      assert.equal(answer.code, 'SERVER_ERROR');
      assert.equal(answer.close, 1011);
    }
    assert.deepEqual(await ready(), { status: 503, body: { status: 'unavailable', checks: ['database_writes'] } });
    assert.deepEqual(await ready(), { status: 503, body: { status: 'unavailable', checks: ['database_writes'] } }, 'the probe fails too');

    const unexpected = lines.filter((line) => line.includes('"msg":"handshake failed unexpectedly"'));
    assert.equal(unexpected.length, 1, 'three identical failures, one full log line (the rest are summarised)');
    assert.match(unexpected[0]!, /SQLITE_FULL/);

    // Space freed: readiness notices by itself (its probe commits), without any traffic.
    await sql.raw('PRAGMA max_page_count = 4294967294').execute(db);
    await eventually(async () => (await ready()).status === 200, 3_000, 'ready again');
    const answer = await handshake('after');
    assert.equal(answer.type, 'handshake.complete');
    await sql`DROP TRIGGER test_grow`.execute(db);
  });
});
