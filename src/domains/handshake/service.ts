/**
 * The database side of a handshake: the checks before the challenge, the one transaction that
 * records a completed handshake, and the audit entry of a failed one. No sockets here.
 *
 * The completing transaction holds everything a completed handshake writes, so it exists
 * entirely or not at all: the relationship (new or touched), the directory entry, for a new
 * relationship the provider notice and the webhook events, and the `handshake.completed` audit
 * entry. The block and the provider are checked again inside it (one read, ./store.ts), so a
 * block or a provider suspension made while the patient was answering the challenge still wins.
 */
import { randomUUID } from 'node:crypto';
import { DEFAULT_FAILURE_AUDIT_BATCH_MAX } from '../../foundation/config/schema.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import type { Db, Storage } from '../../foundation/storage/index.ts';
import { receiptFromTicket, type AuditLog, type ReceiptTicket } from '../audit/index.ts';
import type { OrganizationKey } from '../../foundation/organization/keys.ts';
import { upsertFromHandshake, type PatientProfile } from '../directory/index.ts';
import { awaitingPull, enqueue } from '../outbox/index.ts';
import { publishWebhookEvent } from '../webhooks/index.ts';
import { establishRelationship } from '../relationships/index.ts';
import { signAttestation, type Receipt, type SignedPayload } from 'neuron-careagent-client/protocol';
import type { ActiveProvider } from '../providers/index.ts';
import { readHandshakeFacts, type HandshakeFacts } from './store.ts';

/** The relationship as the handshake recorded it. */
type EstablishedRelationship = Awaited<ReturnType<typeof establishRelationship>>['relationship'];

/** What a new relationship's notices are built from. */
interface NoticeContext {
  request: CompletionRequest;
  at: string;
  relationship: EstablishedRelationship;
  provider: ActiveProvider;
  providerPushes: boolean;
  ticket: ReceiptTicket;
  attest: () => SignedPayload;
}

export interface HandshakeServiceOptions {
  storage: Storage;
  audit: AuditLog;
  organizationKey: OrganizationKey;
  organizationNpi: string;
  /**
   * outbox.backoff_max_ms: a relationship notice for a provider that pulls (no notification_url)
   * is written already held for this long, as the outbox worker would hold it after a look.
   */
  pullNoticeHoldMs: number;
  /** handshake.failure_audit_batch_max: most failure audit entries per transaction (default in the config schema). */
  failureAuditBatchMax?: number;
}

export interface CompletionRequest {
  sessionId: string;
  patientAgentId: string;
  patientPublicKey: string;
  patientEndpoint: string;
  providerNpi: string;
  consentedActions: string[];
  consentTokenPayload: string;
  consentTokenSignature: string;
  tokenDialect: 'A' | 'B';
  consentExpiresAt: Date;
  connectionId: string | null;
  profile: PatientProfile | null;
  /** Epoch milliseconds of the completion. */
  now: number;
}

export interface CompletedHandshake {
  status: 'new' | 'existing';
  relationshipId: string;
  provider: ActiveProvider;
  consentedActions: string[];
  attestation: SignedPayload;
  /** The audit receipt of the handshake.completed entry, from the tree head sealed in this commit. */
  receipt: Receipt;
  /** Something was queued that the outbox worker should deliver now (a pushed notice, a webhook). */
  deliveryQueued: boolean;
}

/** PROVIDER_NOT_FOUND before BLOCKED, as the spec orders the checks. */
function admitted(facts: HandshakeFacts): HandshakeFacts & { provider: ActiveProvider } {
  if (facts.provider === null) throw new NeuronError('PROVIDER_NOT_FOUND');
  if (facts.blocked) throw new NeuronError('BLOCKED');
  return facts as HandshakeFacts & { provider: ActiveProvider };
}

/** Thrown inside the completing transaction to roll it back when the session ended meanwhile. */
export class SessionEndedError extends Error {
  constructor() {
    super('the handshake session ended before its transaction committed');
    this.name = 'SessionEndedError';
  }
}

export class HandshakeService {
  readonly #storage: Storage;
  readonly #audit: AuditLog;
  readonly #key: OrganizationKey;
  readonly #pullNoticeHoldMs: number;
  readonly #failureAuditBatchMax: number;
  readonly organizationNpi: string;

  constructor(options: HandshakeServiceOptions) {
    this.#storage = options.storage;
    this.#audit = options.audit;
    this.#key = options.organizationKey;
    this.organizationNpi = options.organizationNpi;
    this.#pullNoticeHoldMs = options.pullNoticeHoldMs;
    this.#failureAuditBatchMax = options.failureAuditBatchMax ?? DEFAULT_FAILURE_AUDIT_BATCH_MAX;
  }

  get neuronPublicKey(): string {
    return this.#key.publicKey;
  }

  /**
   * The checks between a valid token and the challenge: the provider must be one this Neuron
   * serves and active (PROVIDER_NOT_FOUND), and neither the patient agent nor its key may be blocked (BLOCKED).
   */
  async checkBeforeChallenge(providerNpi: string, patientAgentId: string, patientPublicKey: string): Promise<ActiveProvider> {
    return admitted(await readHandshakeFacts(this.#storage.db, providerNpi, patientAgentId, patientPublicKey)).provider;
  }

  /**
   * Records a completed handshake in one transaction and returns what handshake.complete needs.
   * `stillCurrent` is asked last inside the transaction; when it answers false (the client broke
   * the protocol, went away or the Neuron is stopping) everything rolls back.
   *
   * Handshakes completing together share a commit on SQLite (`Storage.groupTransaction`): each
   * is still all or nothing on its own, and none is answered before the shared commit. When at
   * least storage.sqlite_commit_siblings more are expected (`othersComing`: the sessions awaiting
   * their token or challenge response; or by the recent rate), it waits up to
   * storage.sqlite_commit_delay_ms for them.
   */
  async complete(request: CompletionRequest, stillCurrent: () => boolean, othersComing?: () => number): Promise<CompletedHandshake> {
    const at = new Date(request.now).toISOString();
    // Filled by the seal just before COMMIT (AuditTree); the answer waits for that commit anyway.
    const ticket: ReceiptTicket = { proof: null };
    let attest: () => SignedPayload = () => {
      throw new Error('the attestation is signed only after the handshake was recorded');
    };
    const done = await this.#storage.groupTransaction(
      async (trx) => {
        // Asked before any write too: a session already gone leaves its commit group without writing.
        if (!stillCurrent()) throw new SessionEndedError();
        const { provider, providerPushes, knownPatient, directoryKey } = admitted(
          await readHandshakeFacts(trx, request.providerNpi, request.patientAgentId, request.patientPublicKey),
        );
        const { status, relationship } = await this.#recordRelationship(trx, request, at, { knownPatient, directoryKey });
        // Signed once the seal has run (in onProof, or after the commit), so that it names the key the
        // receipt's tree head is signed with, also when that seal picked up a key rotated elsewhere.
        attest = this.#attestationSigner(relationship, provider, at);
        const deliveryQueued =
          status === 'new' ? await this.#queueNotices(trx, { request, at, relationship, provider, providerPushes, ticket, attest }) : false;
        await this.#audit.append(
          trx,
          {
            type: 'handshake.completed',
            actor: `patient:${request.patientAgentId}`,
            details: {
              session_id: request.sessionId,
              status,
              relationship_id: relationship.id,
              provider_npi: provider.npi,
              ...(request.connectionId === null ? {} : { connection_id: request.connectionId }),
            },
          },
          request.now,
          ticket,
        );

        if (!stillCurrent()) throw new SessionEndedError();
        return {
          status,
          relationshipId: relationship.id,
          provider,
          consentedActions: relationship.consentedActions,
          deliveryQueued,
        };
      },
      othersComing === undefined ? undefined : { othersComing },
    );
    return { ...done, attestation: attest(), receipt: receiptFromTicket(ticket) };
  }

  /** The relationship (new or renewed) and the patient's directory entry, in the handshake's transaction. */
  async #recordRelationship(
    trx: Db,
    request: CompletionRequest,
    at: string,
    { knownPatient, directoryKey }: Pick<HandshakeFacts, 'knownPatient' | 'directoryKey'>,
  ) {
    const established = await establishRelationship(trx, {
      patientAgentId: request.patientAgentId,
      patientPublicKey: request.patientPublicKey,
      patientEndpoint: request.patientEndpoint,
      providerNpi: request.providerNpi,
      consentedActions: request.consentedActions,
      consentTokenPayload: request.consentTokenPayload,
      consentTokenSignature: request.consentTokenSignature,
      tokenDialect: request.tokenDialect,
      consentExpiresAt: request.consentExpiresAt.toISOString(),
      connectionId: request.connectionId,
      at,
      patientKnown: knownPatient,
    });
    await upsertFromHandshake(
      trx,
      {
        patientAgentId: request.patientAgentId,
        patientPublicKey: request.patientPublicKey,
        patientEndpoint: request.patientEndpoint,
        profile: request.profile,
      },
      at,
      // Read in this transaction by the facts read: the upsert need not read it again.
      directoryKey,
    );
    return established;
  }

  /** Signs the relationship's attestation once, on first use. */
  #attestationSigner(relationship: EstablishedRelationship, provider: ActiveProvider, at: string): () => SignedPayload {
    let attestation: SignedPayload | null = null;
    return () =>
      (attestation ??= signAttestation(
        {
          relationship_id: relationship.id,
          patient_agent_id: relationship.patientAgentId,
          patient_public_key: relationship.patientPublicKey,
          provider_npi: provider.npi,
          provider_public_key: provider.publicKey,
          consented_actions: relationship.consentedActions,
          organization_npi: this.organizationNpi,
          issued_at: at,
          neuron_public_key: this.#key.publicKey,
        },
        this.#key.privateKey,
      ));
  }

  /**
   * A new relationship's notices: the provider CareAgent's (spec section 7; delivered by the
   * outbox worker, signed at delivery) and the third-party webhooks'. Whether any will be pushed.
   */
  async #queueNotices(trx: Db, notice: NoticeContext): Promise<boolean> {
    const { request, at, relationship, provider, ticket, attest } = notice;
    const eventId = randomUUID();
    // Written once the seal gave the receipt it carries, still in this transaction, so it exists
    // exactly when the relationship does.
    ticket.onProof = async (sealing) => {
      const body = JSON.stringify({
        event_id: eventId,
        relationship_id: relationship.id,
        patient_agent_id: relationship.patientAgentId,
        patient_public_key: relationship.patientPublicKey,
        patient_endpoint: relationship.patientEndpoint,
        consented_actions: relationship.consentedActions,
        established_at: relationship.establishedAt,
        attestation: { ...attest(), receipt: receiptFromTicket(ticket) },
      });
      await enqueue(
        sealing,
        {
          kind: 'provider.relationship',
          eventType: 'relationship.established',
          target: provider.npi,
          body,
          eventId,
          ...(notice.providerPushes ? {} : awaitingPull(request.now, this.#pullNoticeHoldMs)),
        },
        at,
      );
    };
    // Third-party subscribers learn that a relationship exists, never who the patient is beyond the agent id.
    const webhooks = await publishWebhookEvent(
      trx,
      'relationship.established',
      {
        relationship_id: relationship.id,
        patient_agent_id: relationship.patientAgentId,
        provider_npi: provider.npi,
        consented_actions: relationship.consentedActions,
        established_at: relationship.establishedAt,
      },
      at,
    );
    return notice.providerPushes || webhooks > 0;
  }

  /**
   * The audit entry of a failed handshake: the code and the reason, nothing the client sent.
   *
   * Failures reported in the same turn of the event loop are written together, one transaction
   * per handshake.failure_audit_batch_max entries, each still its own entry. A failed handshake is the one
   * write any internet client can cause at will, and on SQLite every commit is an fsync on the
   * event loop (storage.sqlite_synchronous = FULL): written one by one, 4 000 idle clients timing
   * out together stalled the Neuron for over a second (docs/security.md, `npm run stress`).
   */
  recordFailure(code: string, reason: string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#failures.push({ details: reason === undefined ? { code } : { code, reason }, resolve, reject });
      if (this.#failures.length === 1) setImmediate(() => void this.#writeFailures());
    });
  }

  #failures: Array<{ details: Record<string, string>; resolve: () => void; reject: (error: unknown) => void }> = [];

  async #writeFailures(): Promise<void> {
    const pending = this.#failures;
    this.#failures = [];
    for (let i = 0; i < pending.length; i += this.#failureAuditBatchMax) {
      const batch = pending.slice(i, i + this.#failureAuditBatchMax);
      try {
        await this.#storage.transaction(async (trx) => {
          for (const failure of batch)
            await this.#audit.append(trx, { type: 'handshake.failed', actor: 'system', details: failure.details });
        });
        for (const failure of batch) failure.resolve();
      } catch (error) {
        for (const failure of batch) failure.reject(error);
      }
    }
  }
}
