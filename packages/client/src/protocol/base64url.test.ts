import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { BASE64URL_ANY_PATTERN, base64urlPattern, decodeBase64url, encodeBase64url, encodedLength, isBase64url } from './base64url.ts';

describe('base64url', () => {
  it('round-trips every length 0..70 and matches the schema patterns', () => {
    const any = new RegExp(BASE64URL_ANY_PATTERN, 'u');
    for (let n = 0; n <= 70; n++) {
      const bytes = randomBytes(n);
      const text = encodeBase64url(bytes);
      assert.equal(text.length, encodedLength(n));
      assert.ok(!text.includes('='));
      assert.deepEqual(decodeBase64url(text, n), bytes);
      assert.deepEqual(decodeBase64url(text), bytes);
      assert.ok(any.test(text));
      assert.ok(new RegExp(base64urlPattern(n), 'u').test(text));
    }
  });

  it('has the wire lengths: 32 bytes are 43 chars, 64 bytes are 86 chars', () => {
    assert.equal(encodedLength(32), 43);
    assert.equal(encodedLength(64), 86);
  });

  it('rejects padding', () => {
    const text = encodeBase64url(randomBytes(32));
    assert.equal(decodeBase64url(`${text}=`), null);
    assert.equal(decodeBase64url(`${text}=`, 32), null);
    assert.equal(isBase64url('AA=='), false);
  });

  it('rejects characters outside the url-safe alphabet', () => {
    const text = encodeBase64url(randomBytes(32));
    for (const bad of ['+', '/', ' ', '.', '\n', 'é', '\u0000']) {
      const mangled = bad + text.slice(1);
      assert.equal(decodeBase64url(mangled, 32), null, JSON.stringify(bad));
      assert.equal(new RegExp(base64urlPattern(32), 'u').test(mangled), false);
    }
  });

  it('rejects wrong lengths', () => {
    const text = encodeBase64url(randomBytes(32));
    assert.equal(decodeBase64url(text.slice(0, 42), 32), null);
    assert.equal(decodeBase64url(`${text}A`, 32), null);
    assert.equal(decodeBase64url(text, 64), null);
    assert.equal(decodeBase64url('A'), null); // 4n+1 characters encode nothing
    assert.equal(decodeBase64url('AAAAA'), null);
  });

  it('rejects non-canonical trailing bits', () => {
    // 32 bytes: the last of 43 chars carries 4 data bits; its low 2 bits must be zero.
    const canonical = encodeBase64url(Buffer.alloc(32)); // ends in 'A'
    const sloppy = `${canonical.slice(0, 42)}B`; // Node would decode this to the same bytes
    assert.deepEqual(Buffer.from(sloppy, 'base64url'), Buffer.alloc(32));
    assert.equal(decodeBase64url(sloppy, 32), null);
    assert.equal(new RegExp(base64urlPattern(32), 'u').test(sloppy), false);
    // 64 bytes: the last of 86 chars carries 2 data bits; its low 4 bits must be zero.
    const sig = encodeBase64url(Buffer.alloc(64));
    assert.equal(decodeBase64url(`${sig.slice(0, 85)}E`, 64), null);
    assert.equal(new RegExp(BASE64URL_ANY_PATTERN, 'u').test(`${sig.slice(0, 85)}E`), false);
  });
});
