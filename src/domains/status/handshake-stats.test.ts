/**
 * GET /v1/stats/handshakes: completed and failed handshakes per UTC day, from the audit log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startApiNeuron, assertProblem, type ApiTestNeuron } from '../../../test/helpers/api.ts';

const DAY_MS = 86_400_000;

describe('GET /v1/stats/handshakes', () => {
  let t: ApiTestNeuron;
  /** When the entries were written: the day they count on, whatever day the requests arrive. */
  let now: number;
  const record = (type: string, at: number): Promise<unknown> =>
    t.neuron.storage.transaction((trx) => t.neuron.audit.append(trx, { type, actor: 'system', details: {} }, at));

  before(async () => {
    t = await startApiNeuron({ config: { console: { stats_max_days: 30 } } });
    now = Date.now();
    await record('handshake.completed', now);
    await record('handshake.completed', now);
    await record('handshake.failed', now);
    await record('handshake.completed', now - 2 * DAY_MS);
    await record('handshake.failed', now - 20 * DAY_MS);
    await record('relationship.suspended', now);
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('lists each of the last 14 days by default, oldest first, with zeros for quiet days', async () => {
    const response = await t.request('GET', '/v1/stats/handshakes', { key: t.keys.read });
    assert.equal(response.status, 200, response.text);
    const days = response.body.days as Array<{ date: string; completed: number; failed: number }>;
    assert.equal(days.length, 14);
    const today = new Date(now).toISOString().slice(0, 10);
    const twoDaysAgo = new Date(now - 2 * DAY_MS).toISOString().slice(0, 10);
    // Today, unless the clock passed midnight (UTC) between writing the entries and asking.
    assert.ok([today, new Date(now + DAY_MS).toISOString().slice(0, 10)].includes(days.at(-1)!.date));
    assert.deepEqual(
      days.find((d) => d.date === today),
      { date: today, completed: 2, failed: 1 },
    );
    assert.deepEqual(
      days.find((d) => d.date === twoDaysAgo),
      { date: twoDaysAgo, completed: 1, failed: 0 },
    );
    assert.deepEqual(
      days.map((d) => d.date),
      [...days.map((d) => d.date)].sort(),
    );
    assert.ok(
      !days.some((d) => d.date === new Date(now - 20 * DAY_MS).toISOString().slice(0, 10)),
      'the failure 20 days ago is outside the span',
    );
  });

  it('takes days up to console.stats_max_days', async () => {
    const month = await t.request('GET', '/v1/stats/handshakes?days=30', { key: t.keys.read });
    assert.equal(month.status, 200, month.text);
    assert.equal(month.body.days.length, 30);
    assert.ok(
      month.body.days.some(
        (d: { date: string; failed: number }) => d.date === new Date(now - 20 * DAY_MS).toISOString().slice(0, 10) && d.failed === 1,
      ),
    );
    assertProblem(await t.request('GET', '/v1/stats/handshakes?days=31', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/stats/handshakes?days=0', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/stats/handshakes'), 401, 'UNAUTHENTICATED');
  });
});
