import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findDuplicateKey } from './json-keys.ts';

describe('findDuplicateKey', () => {
  it('finds a key repeated in one object at any depth, compared after unescaping', () => {
    assert.equal(findDuplicateKey('{"a":1,"a":2}'), 'a');
    assert.equal(findDuplicateKey('{"a":1,"\\u0061":2}'), 'a');
    assert.equal(findDuplicateKey('{"x":[1,{"y":{"z":1,"z":[]}}]}'), 'z');
    assert.equal(findDuplicateKey('[{"k":1},{"k":2,"k":3}]'), 'k');
    assert.equal(findDuplicateKey('{"q\\"uote":1,"q\\"uote":2}'), 'q"uote');
    assert.equal(findDuplicateKey('{"":1,"":2}'), '');
    assert.equal(findDuplicateKey('{"__proto__":1,"__proto__":2}'), '__proto__');
  });

  it('accepts distinct keys, the same key in different objects, and key-like text in values', () => {
    for (const json of [
      '{}',
      '[]',
      '"a"',
      '42',
      'null',
      '{"a":1,"b":2}',
      '[{"k":1},{"k":2}]',
      '{"a":{"a":{"a":1}}}',
      '{"a":"a","b":["a","a"],"c":"\\"a\\":1,\\"a\\""}',
      '{"a":[],"b":{},"c":[{}],"d":"}{[],:"}',
      ' { "a" : 1 , "b" : [ { "a" : 2 } , 3 ] } ',
      '{"\\\\":1,"\\\\\\"":2}',
    ])
      assert.equal(findDuplicateKey(json), null, json);
  });
});
