import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ArrivalRate } from './arrivals.ts';

describe('ArrivalRate', () => {
  it('expects nothing before anything arrived, nor after a single arrival', () => {
    const rate = new ArrivalRate();
    assert.ok(rate.expectedWithin(10) < 0.1);
    rate.arrived(0);
    assert.ok(rate.expectedWithin(10) < 0.1);
  });

  it('learns a steady rate within a hundred and fifty arrivals: one every 2 ms expects about 5 in 10 ms', () => {
    const rate = new ArrivalRate();
    for (let i = 0; i < 150; i += 1) rate.arrived(i * 2);
    const expected = rate.expectedWithin(10);
    assert.ok(expected > 4.5 && expected <= 5.01, `expected ${expected}`);
  });

  it('forgets a burst after one quiet second: the next lone arrival expects little', () => {
    const rate = new ArrivalRate();
    for (let i = 0; i < 150; i += 1) rate.arrived(i);
    assert.ok(rate.expectedWithin(10) > 5);
    rate.arrived(150 + 1_000);
    assert.ok(rate.expectedWithin(10) < 0.1, `expected ${rate.expectedWithin(10)}`);
  });

  it('takes arrivals in the same millisecond (one turn of the event loop) without dividing by zero', () => {
    const rate = new ArrivalRate();
    for (let i = 0; i < 200; i += 1) rate.arrived(5);
    assert.ok(Number.isFinite(rate.expectedWithin(10)));
    assert.ok(rate.expectedWithin(10) > 1_000);
  });
});
