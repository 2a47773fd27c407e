import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backoffCeiling, fullJitterDelay } from './backoff.ts';

describe('full-jitter backoff', () => {
  const policy = { initialMs: 100, maxMs: 1_000 };

  it('doubles the ceiling per attempt up to the maximum', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 100, 10_000].map((attempt) => backoffCeiling(attempt, policy)),
      [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000],
    );
  });

  it('draws uniformly between zero and the ceiling', () => {
    assert.equal(fullJitterDelay(3, policy, () => 0), 0);
    assert.equal(fullJitterDelay(3, policy, () => 0.5), 400);
    assert.ok(fullJitterDelay(3, policy, () => 0.999_999) < 800);
    for (let i = 0; i < 1_000; i++) {
      const delay = fullJitterDelay(2, policy);
      assert.ok(delay >= 0 && delay < 400);
    }
  });
});
