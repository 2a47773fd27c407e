import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCursor, encodeCursor, pageOf } from './cursor.ts';
import { NeuronError } from '../errors/index.ts';

test('pageOf returns limit items and a cursor only when a further row was read', () => {
  const rows = [{ n: 1 }, { n: 2 }, { n: 3 }];
  const full = pageOf(
    rows,
    2,
    (row) => row.n * 10,
    (last) => [last],
  );
  assert.deepEqual(full.items, [10, 20]);
  assert.deepEqual(decodeCursor(full.next!, ['number']), [20]);
  assert.deepEqual(
    pageOf(
      rows,
      3,
      (row) => row.n,
      (last) => [last],
    ),
    { items: [1, 2, 3], next: null },
  );
  assert.deepEqual(
    pageOf(
      [],
      5,
      (row: { n: number }) => row.n,
      (last) => [last],
    ),
    { items: [], next: null },
  );
});

test('a cursor of the wrong shape or alphabet is INVALID_CURSOR', () => {
  for (const bad of ['not base64url!', encodeCursor(['a']), Buffer.from('{"a":1}').toString('base64url'), 'x'.repeat(600)]) {
    assert.throws(
      () => decodeCursor(bad, ['string', 'string']),
      (error: unknown) => error instanceof NeuronError && error.code === 'INVALID_CURSOR',
    );
  }
});
