/**
 * The handshake's one read: everything it must know about a provider and a patient agent before
 * challenging and again inside the completing transaction, in a single round trip (a primary-key
 * probe of each of providers, blocks and patients). Read fresh each time, never cached, so a
 * provider approval or suspension and a block made by the CLI, the API or another instance count
 * from the next handshake on (and for a handshake in flight, at its commit). Whether the provider
 * may take patients is the roster's one rule (`activeProviderOf`, src/domains/providers/), applied to the
 * row this read returns.
 */
import { Statement } from '../../foundation/storage/statements.ts';
import type { Db } from '../../foundation/storage/index.ts';
import { activeProviderOf, type ActiveProvider } from '../providers/index.ts';

export interface HandshakeFacts {
  /** The provider when it is active and has a CareAgent endpoint; null otherwise. */
  provider: ActiveProvider | null;
  /** The provider has a notification_url, so its relationship notices are pushed (else pulled). */
  providerPushes: boolean;
  /** The organization has blocked this patient agent id, or an agent that presented this key. */
  blocked: boolean;
  /** The patient agent has a directory entry, i.e. has completed a handshake here before. */
  knownPatient: boolean;
}

// One primary-key probe per table (blocked_keys: the leading column of its primary key); the provider columns are NULL when no provider has the NPI.
const FACTS = new Statement(`
    SELECT
      p.status AS status,
      p.provider_endpoint AS endpoint,
      p.provider_public_key AS public_key,
      p.notification_url IS NOT NULL AS pushes,
      (EXISTS (SELECT 1 FROM blocks WHERE patient_agent_id = ?)
        OR EXISTS (SELECT 1 FROM blocked_keys WHERE patient_public_key = ?)) AS blocked,
      EXISTS (SELECT 1 FROM patients WHERE patient_agent_id = ?) AS known
    FROM (SELECT 1 AS one) AS facts
    LEFT JOIN providers p ON p.npi = ?`);

type FactsRow = {
  status: string | null;
  endpoint: string | null;
  public_key: string | null;
  pushes: number | boolean | null;
  blocked: number | boolean;
  known: number | boolean;
};

/** `patientPublicKey` is the canonical base64url key from handshake.auth (the schema admits no other spelling). */
export async function readHandshakeFacts(
  db: Db,
  providerNpi: string,
  patientAgentId: string,
  patientPublicKey: string,
): Promise<HandshakeFacts> {
  // Plain SQL that SQLite and PostgreSQL both run, written once (../storage/statements.ts);
  // building it with the query builder measured about three times the cost of the query itself.
  const { rows } = await FACTS.execute<FactsRow>(db, [patientAgentId, patientPublicKey, patientAgentId, providerNpi]);
  const row = rows[0];
  if (row === undefined) throw new Error('the handshake facts query returned no row');
  const provider = activeProviderOf({ npi: providerNpi, status: row.status, endpoint: row.endpoint, publicKey: row.public_key });
  return {
    provider,
    // Only an active provider's notices are pushed or pulled at all.
    providerPushes: provider !== null && Boolean(row.pushes),
    blocked: Boolean(row.blocked),
    knownPatient: Boolean(row.known),
  };
}
