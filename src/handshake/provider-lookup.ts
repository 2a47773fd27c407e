/**
 * The handshake's view of the provider roster: is this NPI a provider the Neuron serves and is it
 * active, and where does its CareAgent listen. Read from the database on every handshake (one
 * primary-key lookup), so a provider approved or suspended through the CLI, the API or another
 * instance counts from the next handshake on, with no cache to invalidate.
 *
 * Stand-in until src/providers/ offers the same lookup; then this file becomes a re-export.
 */
import type { Db } from '../storage/index.ts';

export interface ActiveProvider {
  npi: string;
  /** The provider CareAgent's direct address, handed to the patient in handshake.complete. */
  endpoint: string;
  /** 43-char base64url, or null when the provider registered no key. */
  publicKey: string | null;
}

/**
 * The active provider with this NPI, or null when there is none, it is pending or suspended, or
 * it has no CareAgent endpoint yet (a patient could not reach it, so it cannot take patients).
 */
export async function getActiveProvider(db: Db, npi: string): Promise<ActiveProvider | null> {
  const row = await db.selectFrom('providers')
    .select(['npi', 'provider_endpoint', 'provider_public_key'])
    .where('npi', '=', npi)
    .where('status', '=', 'active')
    .executeTakeFirst();
  if (row === undefined || row.provider_endpoint === null || row.provider_endpoint === '') return null;
  return { npi: row.npi, endpoint: row.provider_endpoint, publicKey: row.provider_public_key };
}
