/**
 * The handshake's one read: everything it must know about a provider and a patient agent before
 * challenging and again inside the completing transaction, in a single round trip (a primary-key
 * probe of each of providers, blocks and patients). Read fresh each time, never cached, so a
 * provider approval or suspension and a block made by the CLI, the API or another instance count
 * from the next handshake on (and for a handshake in flight, at its commit).
 */
import { Statement } from '../storage/statements.ts';
import type { Db } from '../storage/index.ts';
import type { ActiveProvider } from './provider-lookup.ts';

export interface HandshakeFacts {
  /** The provider when it is active and has a CareAgent endpoint; null otherwise. */
  provider: ActiveProvider | null;
  /** The organization has blocked this patient agent. */
  blocked: boolean;
  /** The patient agent has a directory entry, i.e. has completed a handshake here before. */
  knownPatient: boolean;
}

const FACTS = new Statement(`
    SELECT
      (SELECT provider_endpoint FROM providers WHERE npi = ? AND status = 'active') AS endpoint,
      (SELECT provider_public_key FROM providers WHERE npi = ? AND status = 'active') AS public_key,
      EXISTS (SELECT 1 FROM blocks WHERE patient_agent_id = ?) AS blocked,
      EXISTS (SELECT 1 FROM patients WHERE patient_agent_id = ?) AS known`);

export async function readHandshakeFacts(db: Db, providerNpi: string, patientAgentId: string): Promise<HandshakeFacts> {
  // Plain SQL that SQLite and PostgreSQL both run, written once (../storage/statements.ts);
  // building it with the query builder measured about three times the cost of the query itself.
  const { rows } = await FACTS.execute<{ endpoint: string | null; public_key: string | null; blocked: number | boolean; known: number | boolean }>(
    db, [providerNpi, providerNpi, patientAgentId, patientAgentId]);
  const row = rows[0];
  if (row === undefined) throw new Error('the handshake facts query returned no row');
  const endpoint = row.endpoint;
  return {
    provider: endpoint === null || endpoint === '' ? null : { npi: providerNpi, endpoint, publicKey: row.public_key },
    blocked: Boolean(row.blocked),
    knownPatient: Boolean(row.known),
  };
}
