/**
 * What the handshake must know about a provider and a patient agent, before challenging and again
 * inside the completing transaction. Each fact is asked of the domain that owns its table: the
 * provider of `providers/` (whose one "active provider" rule, `activeProviderOf`, decides),
 * the block of `blocks/`, the directory entry of `directory/`; each answers with one primary-key
 * probe run as a prepared statement (storage/statements.ts), so the hot path stays cheap. Read fresh
 * each time, never cached, so a provider approval or suspension and a block made by the CLI, the
 * API or another instance count from the next handshake on (and for a handshake in flight, at its
 * commit).
 */
import type { Db } from '../../foundation/storage/index.ts';
import { isAgentOrKeyBlocked } from '../blocks/index.ts';
import { directoryKeyOf } from '../directory/index.ts';
import { readHandshakeProvider, type ActiveProvider } from '../providers/index.ts';

export interface HandshakeFacts {
  /** The provider when it is active and has a CareAgent endpoint; null otherwise. */
  provider: ActiveProvider | null;
  /** The provider has a notification_url, so its relationship notices are pushed (else pulled). */
  providerPushes: boolean;
  /** The organization has blocked this patient agent id, or an agent that presented this key. */
  blocked: boolean;
  /** The patient agent has a directory entry, i.e. has completed a handshake here before. */
  knownPatient: boolean;
  /** That entry's public key (null without one): the directory upsert needs it, and need not read it again. */
  directoryKey: string | null;
}

/** `patientPublicKey` is the canonical base64url key from handshake.auth (the schema admits no other spelling). */
export async function readHandshakeFacts(
  db: Db,
  providerNpi: string,
  patientAgentId: string,
  patientPublicKey: string,
): Promise<HandshakeFacts> {
  // Asked together: on SQLite each answers at once; on PostgreSQL outside a transaction they may
  // run on separate pooled connections, inside one they queue on its connection.
  const [provider, blocked, directoryKey] = await Promise.all([
    readHandshakeProvider(db, providerNpi),
    isAgentOrKeyBlocked(db, patientAgentId, patientPublicKey),
    directoryKeyOf(db, patientAgentId),
  ]);
  return { provider: provider.provider, providerPushes: provider.pushes, blocked, knownPatient: directoryKey !== null, directoryKey };
}
