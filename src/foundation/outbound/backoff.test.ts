import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryCeilingMs, retryDelayMs } from './backoff.ts';

const policy = { initialMs: 100, maxMs: 1_000 };

test('the ceiling doubles after each failed attempt up to the maximum', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => retryCeilingMs(n, policy)),
    [100, 200, 400, 800, 1_000, 1_000],
  );
  assert.equal(retryCeilingMs(10_000, policy), 1_000, 'huge attempt counts stay finite');
  assert.equal(retryCeilingMs(0, policy), 100);
});

test('full jitter: anywhere from zero to the ceiling', () => {
  assert.equal(
    retryDelayMs(3, policy, () => 0),
    0,
  );
  assert.equal(
    retryDelayMs(3, policy, () => 0.5),
    200,
  );
  assert.equal(
    retryDelayMs(3, policy, () => 0.999_999),
    399,
  );
  assert.equal(
    retryDelayMs(3, policy, () => 7),
    400,
    'a bad random source is clamped',
  );
});
