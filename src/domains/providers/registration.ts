/**
 * The registration capability: the `registration_id` a provider CareAgent gets from
 * POST /v1/providers/register and presents in the path of its heartbeat and disconnect calls,
 * which the network's provider client sends without any Authorization header. Holding the id is
 * what entitles a caller to those two liveness calls, so it is a secret:
 *
 * - 32 random bytes (256 bits; the contract asks for at least 122), base64url, behind `nreg_`;
 *   ids issued before this scheme were random UUIDs (122 random bits) and keep working;
 * - only its SHA-256 digest is stored (a database reader cannot use it), so it is shown once;
 * - logs and audit entries carry at most its first REGISTRATION_PREFIX_CHARS characters.
 */
import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'nreg_';
/** 256 bits: well beyond guessing, and within the path parameter's 64-character bound. */
const RANDOM_BYTES = 32;
/**
 * Enough to tell registrations apart in a log or the roster view, too few to matter: 3 random
 * characters (18 bits) of a new id, 8 hex digits (32 of 122 bits) of an old UUID.
 */
export const REGISTRATION_PREFIX_CHARS = 8;

export interface RegistrationCapability {
  /** Shown once, to whoever registered; never stored. */
  id: string;
  digest: string;
  prefix: string;
}

export function registrationDigest(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

export function registrationPrefix(id: string): string {
  return id.slice(0, REGISTRATION_PREFIX_CHARS);
}

export function issueRegistrationCapability(): RegistrationCapability {
  const id = `${PREFIX}${randomBytes(RANDOM_BYTES).toString('base64url')}`;
  return { id, digest: registrationDigest(id), prefix: registrationPrefix(id) };
}
