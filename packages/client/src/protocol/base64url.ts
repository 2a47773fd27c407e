/**
 * Strict base64url (RFC 4648 section 5) without padding.
 *
 * Node's own `Buffer.from(text, 'base64url')` is lenient: it skips characters outside the
 * alphabet, accepts padding and ignores non-zero trailing bits, so several different strings
 * decode to the same bytes. On the wire every value has exactly one spelling, so we validate
 * before decoding: alphabet only, no `=`, a length that some byte count produces, and zero bits
 * in the unused low bits of the last character (the canonical spelling).
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** 6-bit value of each alphabet character by char code; -1 for anything else. */
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/**
 * Regular-expression source matching exactly the canonical base64url spellings of `bytes`
 * bytes. Used by the message schemas so a non-canonical value fails schema validation.
 */
export function base64urlPattern(bytes: number): string {
  const full = Math.floor(bytes / 3);
  const rest = bytes % 3;
  // The last character of a 1-byte tail carries 2 data bits (low 4 bits zero: A, Q, g, w);
  // of a 2-byte tail, 4 data bits (low 2 bits zero).
  const tail = rest === 0 ? '' : rest === 1 ? '[A-Za-z0-9_-][AQgw]' : '[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048]';
  return `^[A-Za-z0-9_-]{${full * 4}}${tail}$`;
}

/** Pattern for canonical unpadded base64url of any length (used for the consent token payload). */
export const BASE64URL_ANY_PATTERN = '^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$';

/** Number of characters the unpadded encoding of `bytes` bytes has. */
export function encodedLength(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

export function encodeBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** True when `text` is canonical unpadded base64url (optionally of exactly `bytes` bytes). */
export function isBase64url(text: string, bytes?: number): boolean {
  const length = text.length;
  if (bytes !== undefined && length !== encodedLength(bytes)) return false;
  const tail = length % 4;
  if (tail === 1) return false; // no byte count encodes to 4n+1 characters
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128 || VALUE[code]! < 0) return false;
  }
  if (tail !== 0) {
    const last = VALUE[text.charCodeAt(length - 1)]!;
    const unusedBits = tail === 2 ? 0b1111 : 0b11;
    if ((last & unusedBits) !== 0) return false;
  }
  return true;
}

/**
 * Decodes canonical unpadded base64url, or returns null when `text` is not canonical
 * base64url (or does not decode to exactly `bytes` bytes when `bytes` is given).
 */
export function decodeBase64url(text: string, bytes?: number): Buffer | null {
  if (!isBase64url(text, bytes)) return null;
  return Buffer.from(text, 'base64url');
}
