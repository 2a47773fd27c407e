/**
 * The provider CareAgent's credential: `nprv_<credential id>_<secret>`, sent as
 * `Authorization: Bearer nprv_…`. The credential id (16 hex characters, not secret) finds the
 * provider with one indexed read; only the SHA-256 digest of the whole credential is stored, and
 * it is compared in constant time. The credential itself is shown once, when it is issued.
 * Pure apart from the random bytes.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const PROVIDER_CREDENTIAL_PREFIX = 'nprv_';

/** 8 random bytes: a lookup id only, never sufficient on its own. */
const CREDENTIAL_ID_BYTES = 8;
/** 32 random bytes (256 bits): cannot be guessed. */
const CREDENTIAL_SECRET_BYTES = 32;

const CREDENTIAL_PATTERN = /^nprv_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface IssuedCredential {
  /** Shown once; never stored. */
  credential: string;
  credentialId: string;
  digest: string;
}

export function issueProviderCredential(): IssuedCredential {
  const credentialId = randomBytes(CREDENTIAL_ID_BYTES).toString('hex');
  const credential = `${PROVIDER_CREDENTIAL_PREFIX}${credentialId}_${randomBytes(CREDENTIAL_SECRET_BYTES).toString('base64url')}`;
  return { credential, credentialId, digest: credentialDigest(credential) };
}

/** True for text shaped like a provider credential (other authentication hooks leave these alone). */
export function isProviderCredential(token: string): boolean {
  return token.startsWith(PROVIDER_CREDENTIAL_PREFIX);
}

/** The credential id inside a well-formed credential, or null. */
export function credentialIdOf(credential: string): string | null {
  return CREDENTIAL_PATTERN.exec(credential)?.[1] ?? null;
}

/** SHA-256 of the whole credential, hex. */
export function credentialDigest(credential: string): string {
  return createHash('sha256').update(credential, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented credential against a stored digest. */
export function credentialMatches(credential: string, storedDigest: string): boolean {
  const presented = Buffer.from(credentialDigest(credential), 'hex');
  const stored = Buffer.from(storedDigest, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** The bearer token of an Authorization header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}
