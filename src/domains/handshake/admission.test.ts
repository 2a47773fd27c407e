import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressCounts, Admission } from './admission.ts';

const limits = (maxActive: number, maxQueued: number, queueTimeoutMs = 1_000) => ({ maxActive, maxQueued, queueTimeoutMs });

test('admits up to the ceiling, then queues, then refuses when the queue is full', () => {
  const a = new Admission<string>(limits(2, 2));
  assert.equal(a.enter('a', 0).outcome, 'admitted');
  assert.equal(a.enter('b', 0).outcome, 'admitted');
  assert.equal(a.enter('c', 0).outcome, 'queued');
  assert.equal(a.enter('d', 0).outcome, 'queued');
  assert.equal(a.enter('e', 0).outcome, 'full');
  assert.deepEqual({ active: a.active, queued: a.queued }, { active: 2, queued: 2 });
});

test('a freed slot goes to the oldest waiter, first in first out', () => {
  const a = new Admission<string>(limits(1, 10));
  a.enter('first', 0);
  for (const name of ['w1', 'w2', 'w3']) a.enter(name, 1);
  assert.equal(a.release()?.value, 'w1');
  assert.equal(a.release()?.value, 'w2');
  assert.equal(a.release()?.value, 'w3');
  assert.equal(a.active, 1);
  assert.equal(a.release(), null);
  assert.equal(a.active, 0);
  assert.throws(() => a.release(), /without a matching admission/);
});

test('an arrival never overtakes a waiter', () => {
  const a = new Admission<string>(limits(1, 10));
  a.enter('x', 0);
  a.enter('waiting', 0);
  // The slot passes straight to the waiter; the newcomer queues behind nobody but still queues.
  assert.equal(a.release()?.value, 'waiting');
  assert.equal(a.enter('late', 0).outcome, 'queued');
});

test('a waiter that leaves is removed wherever it is, once', () => {
  const a = new Admission<string>(limits(1, 10));
  a.enter('x', 0);
  const waiters = ['a', 'b', 'c', 'd'].map((v) => {
    const r = a.enter(v, 0);
    assert.equal(r.outcome, 'queued');
    return r.outcome === 'queued' ? r.waiter : null!;
  });
  assert.equal(a.leave(waiters[1]!), true); // middle
  assert.equal(a.leave(waiters[1]!), false); // twice
  assert.equal(a.leave(waiters[0]!), true); // head
  assert.equal(a.leave(waiters[3]!), true); // tail
  assert.equal(a.queued, 1);
  assert.equal(a.release()?.value, 'c');
  assert.equal(a.queued, 0);
  assert.equal(a.leave(waiters[2]!), false); // already admitted
});

test('leaving is constant time on a long queue', () => {
  const n = 100_000;
  const a = new Admission<number>(limits(1, n));
  a.enter(-1, 0);
  const waiters = [];
  for (let i = 0; i < n; i++) {
    const r = a.enter(i, 0);
    if (r.outcome === 'queued') waiters.push(r.waiter);
  }
  // Withdraw every other waiter from the front half: an array splice would be quadratic here.
  for (let i = 0; i < n / 2; i += 2) a.leave(waiters[i]!);
  assert.equal(a.queued, n - n / 4);
  assert.equal(a.release()?.value, 1);
});

test('waiters expire in arrival order at their deadline', () => {
  const a = new Admission<string>(limits(1, 10, 100));
  a.enter('x', 0);
  a.enter('early', 10);
  a.enter('late', 50);
  assert.equal(a.nextExpiry(), 110);
  assert.deepEqual(
    a.expire(109).map((w) => w.value),
    [],
  );
  assert.deepEqual(
    a.expire(110).map((w) => w.value),
    ['early'],
  );
  assert.equal(a.nextExpiry(), 150);
  assert.deepEqual(
    a.expire(1_000).map((w) => w.value),
    ['late'],
  );
  assert.equal(a.nextExpiry(), null);
  assert.equal(a.active, 1);
});

test('drain empties the queue oldest first and leaves the slots alone', () => {
  const a = new Admission<string>(limits(1, 10));
  a.enter('x', 0);
  a.enter('a', 0);
  a.enter('b', 0);
  assert.deepEqual(
    a.drain().map((w) => w.value),
    ['a', 'b'],
  );
  assert.equal(a.queued, 0);
  assert.equal(a.active, 1);
});

test('a queue of zero refuses as soon as the slots are taken; limits are validated', () => {
  const a = new Admission<string>(limits(1, 0));
  assert.equal(a.enter('a', 0).outcome, 'admitted');
  assert.equal(a.enter('b', 0).outcome, 'full');
  assert.throws(() => new Admission(limits(0, 1)), RangeError);
  assert.throws(() => new Admission(limits(1, -1)), RangeError);
});

test('per-address counts: up to the limit per address, others unaffected, released back to nothing', () => {
  const counts = new AddressCounts(2);
  assert.equal(counts.acquire('192.0.2.1'), true);
  assert.equal(counts.acquire('192.0.2.1'), true);
  assert.equal(counts.acquire('192.0.2.1'), false, 'a third from the same address is refused');
  assert.equal(counts.pending('192.0.2.1'), 2, 'a refusal counts nothing');
  assert.equal(counts.acquire('192.0.2.2'), true, 'another address has its own allowance');
  assert.deepEqual({ addresses: counts.addresses, total: counts.total }, { addresses: 2, total: 3 });
  counts.release('192.0.2.1');
  assert.equal(counts.acquire('192.0.2.1'), true, 'a release makes room again');
  counts.release('192.0.2.1');
  counts.release('192.0.2.1');
  counts.release('192.0.2.2');
  assert.deepEqual(
    { addresses: counts.addresses, total: counts.total },
    { addresses: 0, total: 0 },
    'no entry is kept for an idle address',
  );
  assert.throws(() => counts.release('192.0.2.1'), /without a matching acquire/);
  assert.throws(() => new AddressCounts(0), RangeError);
});
