/**
 * The API key format (pure, no I/O):
 *
 *   nrn_<key id: 12 × [0-9a-z]>_<secret: 32 × [0-9A-Za-z]><checksum: 6 × [0-9A-Za-z]>
 *   nrn_k3v9x0q2m7ab_Zq4...(32)...Xy1aB2c3
 *
 * - `nrn_` makes a key recognisable to people and to secret scanners;
 * - the key id is not secret: it names the row to look up (primary key), appears in listings,
 *   audit entries and logs;
 * - the secret carries about 190 bits of randomness and is stored only as its SHA-256 digest;
 * - the checksum is the CRC-32 of everything before it, in base62, so a mistyped or truncated key
 *   is refused without a database lookup and a scanner can tell a real key from random text.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const API_KEY_PREFIX = 'nrn_';

const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 12 base36 characters: about 62 bits, collisions are practically impossible and still checked by the primary key. */
const ID_LENGTH = 12;
/** 32 base62 characters: about 190 bits of secret. */
const SECRET_LENGTH = 32;
/** A 32-bit CRC needs 6 base62 characters (62^6 > 2^32). */
const CHECKSUM_LENGTH = 6;

const KEY_PATTERN = new RegExp(
  `^${API_KEY_PREFIX}([0-9a-z]{${ID_LENGTH}})_([0-9A-Za-z]{${SECRET_LENGTH}})([0-9A-Za-z]{${CHECKSUM_LENGTH}})$`,
);
export const KEY_ID_PATTERN = `^[0-9a-z]{${ID_LENGTH}}$`;
/** Labels become audit actors (`api-key:<label>`): short, no spaces or control characters. */
export const LABEL_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$';

export interface ParsedApiKey {
  id: string;
  secret: string;
}

function randomString(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += alphabet[randomInt(alphabet.length)];
  return out;
}

function checksum(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i += 1) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

export function newKeyId(): string {
  return randomString(ID_ALPHABET, ID_LENGTH);
}

/** A fresh key for `id`: the full text (shown once) and the secret part's digest (stored). */
export function generateApiKey(id: string): { key: string; digest: string } {
  const secret = randomString(BASE62, SECRET_LENGTH);
  const body = `${API_KEY_PREFIX}${id}_${secret}`;
  return { key: `${body}${checksum(body)}`, digest: secretDigest(secret) };
}

/** The key's parts, or null when it is not shaped like a key or its checksum does not match. */
export function parseApiKey(text: string): ParsedApiKey | null {
  const match = KEY_PATTERN.exec(text);
  if (!match) return null;
  const [, id, secret, sum] = match as unknown as [string, string, string, string];
  if (checksum(`${API_KEY_PREFIX}${id}_${secret}`) !== sum) return null;
  return { id, secret };
}

/** Looks like one of our keys (prefix), whether or not it is valid. */
export function looksLikeApiKey(text: string): boolean {
  return text.startsWith(API_KEY_PREFIX);
}

export function secretDigest(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of the presented secret with the stored digest. */
export function secretMatches(secret: string, storedDigest: string): boolean {
  const presented = Buffer.from(secretDigest(secret), 'hex');
  const stored = Buffer.from(storedDigest, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}
