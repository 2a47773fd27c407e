import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLastCharacterChanged } from './tamper.ts';

test('tampering always changes the value, whatever its last character', () => {
  for (const value of ['xyzA', 'xyzB', 'xyz_', 'A']) {
    const tampered = withLastCharacterChanged(value);
    assert.notEqual(tampered, value);
    assert.equal(tampered.length, value.length);
    assert.equal(tampered.slice(0, -1), value.slice(0, -1));
  }
  assert.throws(() => withLastCharacterChanged(''));
});
