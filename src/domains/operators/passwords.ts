/**
 * Operator passwords: scrypt (RFC 7914) from Node's crypto, a random 16-byte salt per password,
 * compared in constant time. The parameters are stored with each hash
 * (`scrypt$<N>$<r>$<p>$<salt>$<hash>`, base64url), so raising console.scrypt.* later applies to
 * passwords set from then on and every stored hash still verifies.
 *
 * The asynchronous scrypt runs on libuv's thread pool, so hashing never blocks the event loop.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParameters {
  n: number;
  r: number;
  p: number;
  keylen: number;
}

/** 128 bits: salts never repeat in practice (NIST SP 800-132 asks for at least 128). */
const SALT_BYTES = 16;
/** Generated passwords: 18 random bytes, 144 bits, 24 base64url characters. */
const GENERATED_PASSWORD_BYTES = 18;

function derive(password: string, salt: Buffer, parameters: ScryptParameters): Promise<Buffer> {
  // Node refuses scrypt above 32 MiB unless maxmem allows it; allow what the parameters need.
  const options: ScryptOptions = {
    N: parameters.n,
    r: parameters.r,
    p: parameters.p,
    maxmem: 128 * parameters.n * parameters.r * 2 + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, parameters.keylen, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string, parameters: ScryptParameters): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, parameters);
  return ['scrypt', parameters.n, parameters.r, parameters.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

interface ParsedHash {
  parameters: ScryptParameters;
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64url');
  const key = Buffer.from(parts[5]!, 'base64url');
  if (![n, r, p].every(Number.isSafeInteger) || salt.length === 0 || key.length === 0) return null;
  return { parameters: { n, r, p, keylen: key.length }, salt, key };
}

/** Whether `password` matches `stored`; false for a hash this code cannot read. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (parsed === null) return false;
  const key = await derive(password, parsed.salt, parsed.parameters);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/**
 * A hash of nothing anyone knows, with the current parameters, checked when the name given at
 * sign-in does not exist: an unknown name costs the same time as a wrong password.
 */
export async function decoyHash(parameters: ScryptParameters): Promise<string> {
  return hashPassword(randomBytes(GENERATED_PASSWORD_BYTES).toString('base64url'), parameters);
}

/** A password for an operator who was given none (printed once by the CLI), at least `minLength` long. */
export function generatePassword(minLength: number): string {
  // base64url carries 6 bits a character: 4 characters for every 3 bytes.
  const bytes = Math.max(GENERATED_PASSWORD_BYTES, Math.ceil((minLength * 3) / 4));
  return randomBytes(bytes).toString('base64url');
}
