/**
 * One handshake connection: drives the pure state machine (./machine.ts) with the socket's
 * frames and the deadlines, calls the protocol layer for every check and the service for the
 * database, and ends with exactly one final frame and a close.
 *
 * Cost per handshake is kept at the floor: the patient key is imported once and serves both the
 * token and the challenge; the token is verified once; the database is read once before the
 * challenge and written in one transaction after it; nothing above debug is logged.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { RepeatedErrorLog } from '../../foundation/observability/repeated-errors.ts';
import WebSocket, { type RawData } from 'ws';
import { NeuronError, toCatalogueError } from '../../foundation/errors/index.ts';
import {
  encodeErrorFrame,
  importPatientPublicKey,
  parseClientMessage,
  verifyChallengeResponse,
  verifyConsentToken,
  type ConsentClaims,
  type HandshakeAuth,
  type HandshakeChallenge,
  type HandshakeChallengeResponse,
  type HandshakeComplete,
  type Nonce,
  type PatientProfile,
} from 'neuron-careagent-client/protocol';
import type { DeadlineEntry, DeadlineList } from './deadlines.ts';
import {
  deadlineError,
  deadlineIn,
  isTerminal,
  onFrame,
  statusOf,
  transition,
  type Deadline,
  type Phase,
  type PhaseEvent,
} from './machine.ts';
import { SessionEndedError, type CompletedHandshake, type HandshakeService } from './service.ts';
import type { ProtocolSession } from './types.ts';

/**
 * ws errors it answers with close 1009: a message over maxPayload, and a frame that declares a
 * payload length beyond 2^53 - 1. Both are audited as MESSAGE_TOO_LARGE, like the close says.
 */
const TOO_LARGE_WS_ERRORS: ReadonlySet<string> = new Set(['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH']);

export interface SessionSettings {
  authTimeoutMs: number;
  challengeTimeoutMs: number;
  clockSkewMs: number;
}

/**
 * The broker's deadline lists, one timer each for all sessions (./deadlines.ts): the client
 * deadlines of each phase (handshake.auth_timeout_ms, challenge_timeout_ms).
 */
export interface SessionDeadlines {
  readonly auth: DeadlineList<HandshakeSession>;
  readonly challenge: DeadlineList<HandshakeSession>;
}

/** What a session needs from the broker that owns it. */
export interface SessionHost {
  readonly service: HandshakeService;
  readonly settings: SessionSettings;
  readonly deadlines: SessionDeadlines;
  readonly logger: Logger;
  /** Unexpected failures that repeat (a full disk fails every handshake alike) are summarised. */
  readonly repeatedErrors: RepeatedErrorLog;
  /** Wall clock in epoch milliseconds, for token validity and record times (deadlines use performance.now()). */
  now(): number;
  createNonce(): Nonce;
  /** Called once, when the session reaches a terminal phase: the slot is free from here on. */
  ended(session: HandshakeSession, outcome: string, failed: boolean): void;
  /** A completed handshake queued something the outbox worker should deliver now. */
  deliveryQueued(): void;
  /** Called once, when the socket has closed. */
  closed(session: HandshakeSession): void;
  /** Database work still running after the session ended; the broker waits for it on stop. */
  track(work: Promise<unknown>): void;
}

export class HandshakeSession {
  readonly id = randomUUID();
  readonly startedAt: Date;
  /** performance.now() at admission, for the duration metric. */
  readonly startedTick = performance.now();
  #phase: Phase = 'awaiting_auth';
  #patientAgentId = '';
  #providerNpi = '';
  /** The running client deadline of this phase, if any, and its list. */
  #deadline: DeadlineEntry<HandshakeSession> | null = null;
  #deadlineList: DeadlineList<HandshakeSession> | null = null;
  #patientKey: KeyObject | null = null;
  #auth: HandshakeAuth | null = null;
  #claims: ConsentClaims | null = null;
  #nonce: Nonce | null = null;
  /** performance.now() deadline of the challenge (the timer enforces it too; this catches a late timer). */
  #challengeExpiresAt = 0;

  readonly #ws: WebSocket;
  readonly #host: SessionHost;
  readonly #socket: Duplex;

  constructor(options: {
    ws: WebSocket;
    host: SessionHost;
    /** The connection under `ws`, corked while the last frame and the close frame are written. */
    socket: Duplex;
  }) {
    this.#ws = options.ws;
    this.#host = options.host;
    this.#socket = options.socket;
    this.startedAt = new Date();
  }

  /** Attaches the socket's events and starts the auth deadline. */
  begin(): void {
    this.#ws.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(data, isBinary));
    this.#ws.on('error', (error: Error & { code?: string }) => this.#onSocketError(error));
    this.#ws.once('close', () => {
      this.#cancelDeadline();
      if (!isTerminal(this.#phase)) this.#end('peer_closed', 'abandoned', false);
      this.#host.closed(this);
    });
    this.#armDeadline();
  }

  snapshot(): ProtocolSession {
    return {
      sessionId: this.id,
      patientAgentId: this.#patientAgentId,
      providerAgentId: this.#providerNpi,
      startedAt: this.startedAt,
      status: statusOf(this.#phase),
    };
  }

  get currentPhase(): Phase {
    return this.#phase;
  }

  /** A client deadline of the broker's lists fell due. */
  deadlinePassed(deadline: Deadline): void {
    this.#deadline = null;
    this.#deadlineList = null;
    if (deadlineIn(this.#phase) === deadline) this.#fail(deadlineError(deadline));
  }

  /** Neuron shutdown: close 1001 without an error frame (spec section 5). */
  shutdown(): void {
    if (isTerminal(this.#phase)) {
      this.#ws.terminate();
      return;
    }
    this.#failWith(new NeuronError('SHUTTING_DOWN'), false);
    this.#closeSocket(1001);
  }

  // ---- input ----

  #onMessage(data: RawData, isBinary: boolean): void {
    const decision = onFrame(this.#phase, isBinary);
    if (decision.action === 'ignore') return;
    if (decision.action === 'reject') return this.#fail(decision.error);
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : data.toString('utf8');
    try {
      if (decision.expected === 'handshake.auth') this.#onAuth(parseClientMessage(text, 'handshake.auth'));
      else this.#onChallengeResponse(parseClientMessage(text, 'handshake.challenge_response'));
    } catch (error) {
      this.#fail(error);
    }
  }

  #onSocketError(error: Error & { code?: string }): void {
    // ws has already started closing with its own code (1009 too large, 1002/1007 bad framing or
    // UTF-8); there is no room for an error frame any more.
    if (isTerminal(this.#phase)) return;
    const code = TOO_LARGE_WS_ERRORS.has(error.code ?? '') ? 'MESSAGE_TOO_LARGE' : 'INVALID_MESSAGE';
    this.#failWith(new NeuronError(code, { cause: error }), false);
  }

  /** Step 1: handshake.auth. Synchronous checks first, then the database, then the challenge. */
  #onAuth(auth: HandshakeAuth): void {
    const key = importPatientPublicKey(auth.patient_public_key);
    const claims = verifyConsentToken({
      payloadB64: auth.consent_token_payload,
      signatureB64: auth.consent_token_signature,
      patientPublicKey: key,
      patientAgentId: auth.patient_agent_id,
      now: this.#host.now(),
      clockSkewMs: this.#host.settings.clockSkewMs,
    });
    this.#auth = auth;
    this.#patientKey = key;
    this.#claims = claims;
    this.#patientAgentId = claims.patientAgentId;
    this.#providerNpi = claims.providerNpi;
    this.#step('auth_accepted');
    this.#run(this.#challenge(claims));
  }

  async #challenge(claims: ConsentClaims): Promise<void> {
    await this.#host.service.checkBeforeChallenge(claims.providerNpi, claims.patientAgentId, this.#auth!.patient_public_key);
    if (this.#phase !== 'checking') return; // ended while we looked
    const nonce = this.#host.createNonce();
    this.#nonce = nonce;
    this.#challengeExpiresAt = performance.now() + this.#host.settings.challengeTimeoutMs;
    const message: HandshakeChallenge = {
      type: 'handshake.challenge',
      nonce: nonce.hex,
      provider_npi: claims.providerNpi,
      organization_npi: this.#host.service.organizationNpi,
    };
    this.#ws.send(JSON.stringify(message));
    this.#step('challenge_sent');
  }

  /** Step 3: the challenge response. Single use: the nonce is gone once a response was looked at. */
  #onChallengeResponse(response: HandshakeChallengeResponse): void {
    const nonce = this.#nonce;
    const key = this.#patientKey;
    this.#nonce = null;
    if (nonce === null || key === null) throw new NeuronError('INVALID_MESSAGE', { message: 'message out of order' });
    if (performance.now() > this.#challengeExpiresAt) throw deadlineError('challenge');
    if (!verifyChallengeResponse(nonce.bytes, response.signed_nonce, key)) throw new NeuronError('CHALLENGE_FAILED');
    this.#step('response_verified');
    this.#run(this.#commit(response.patient_profile ?? null));
  }

  async #commit(profile: PatientProfile | null): Promise<void> {
    const auth = this.#auth!;
    const claims = this.#claims!;
    let done: CompletedHandshake;
    try {
      done = await this.#host.service.complete(
        {
          sessionId: this.id,
          patientAgentId: claims.patientAgentId,
          patientPublicKey: auth.patient_public_key,
          patientEndpoint: auth.patient_endpoint,
          providerNpi: claims.providerNpi,
          consentedActions: claims.consentedActions,
          consentTokenPayload: auth.consent_token_payload,
          consentTokenSignature: auth.consent_token_signature,
          tokenDialect: claims.dialect,
          consentExpiresAt: claims.expiresAt,
          connectionId: auth.connection_id ?? null,
          profile,
          now: this.#host.now(),
        },
        () => this.#phase === 'committing',
        // Sessions whose token or challenge response is still to come may complete within the
        // commit delay. Under saturation most wait for their token to be read, few for their
        // response (the client answers a challenge at once), so both count.
        () => this.#host.deadlines.auth.size + this.#host.deadlines.challenge.size,
      );
    } catch (error) {
      if (error instanceof SessionEndedError) return; // rolled back; the session already ended
      throw error;
    }
    if (this.#phase !== 'committing') {
      // Only possible where a commit can interleave with socket events (PostgreSQL): the record
      // stands and the patient's next handshake answers `existing`.
      this.#host.logger.debug({ session: this.id }, 'handshake committed after its session ended');
      return;
    }
    const message: HandshakeComplete = {
      type: 'handshake.complete',
      status: done.status,
      relationship_id: done.relationshipId,
      provider_npi: done.provider.npi,
      provider_endpoint: done.provider.endpoint,
      consented_actions: done.consentedActions,
      attestation: { ...done.attestation, receipt: done.receipt },
      neuron_public_key: this.#host.service.neuronPublicKey,
    };
    if (done.provider.publicKey !== null) message.provider_public_key = done.provider.publicKey;
    this.#lastFrames(() => {
      this.#ws.send(JSON.stringify(message));
      this.#end('committed', done.status, false);
      if (done.deliveryQueued) this.#host.deliveryQueued();
      this.#closeSocket(1000);
    });
  }

  // ---- effects ----

  /** Runs an async step; anything it throws ends the session with its error. Tracked so a stop waits for it. */
  #run(work: Promise<void>): void {
    this.#host.track(work.catch((error: unknown) => this.#fail(error)));
  }

  #step(event: PhaseEvent): void {
    const next = transition(this.#phase, event);
    if (next === null) throw new Error(`handshake: ${event} is not allowed in ${this.#phase}`);
    this.#phase = next;
    this.#armDeadline();
  }

  #armDeadline(): void {
    this.#cancelDeadline();
    const deadline = deadlineIn(this.#phase);
    if (deadline === null) return;
    const list = deadline === 'auth' ? this.#host.deadlines.auth : this.#host.deadlines.challenge;
    this.#deadline = list.add(this);
    this.#deadlineList = list;
  }

  #cancelDeadline(): void {
    if (this.#deadline === null) return;
    this.#deadlineList!.cancel(this.#deadline);
    this.#deadline = null;
    this.#deadlineList = null;
  }

  /** Ends the session with one handshake.error frame and the catalogue's close code. */
  #fail(error: unknown): void {
    if (isTerminal(this.#phase)) return;
    const neuronError = toCatalogueError(error);
    if (neuronError.code === 'SERVER_ERROR')
      this.#host.repeatedErrors.error(neuronError.cause ?? error, { session: this.id }, 'handshake failed unexpectedly');
    else this.#host.logger.debug({ code: neuronError.code, reason: neuronError.reason, session: this.id }, 'handshake refused');
    this.#failWith(neuronError, true);
  }

  #failWith(error: NeuronError, sendFrame: boolean): void {
    if (isTerminal(this.#phase)) return;
    this.#end('fail', error.code, true);
    if (sendFrame && this.#ws.readyState === WebSocket.OPEN) {
      this.#lastFrames(() => {
        this.#ws.send(encodeErrorFrame(error));
        this.#closeSocket(error.closeCode ?? 1011);
      });
    }
    this.#host.track(
      this.#host.service.recordFailure(error.code, error.reason).catch((auditError: unknown) => {
        this.#host.repeatedErrors.error(auditError, {}, 'could not write the handshake.failed audit entry');
      }),
    );
  }

  #end(event: PhaseEvent, outcome: string, failed: boolean): void {
    const next = transition(this.#phase, event);
    if (next === null) return;
    this.#phase = next;
    this.#cancelDeadline();
    this.#nonce = null;
    this.#host.ended(this, outcome, failed);
  }

  /**
   * Runs `write` (the last message, then the close frame) with the connection corked, so that both
   * frames leave in one write and one TCP segment rather than two: a system call, and on loopback
   * a delivery to the peer, fewer per handshake.
   */
  #lastFrames(write: () => void): void {
    this.#socket.cork();
    try {
      write();
    } finally {
      this.#socket.uncork();
    }
  }

  #closeSocket(code: number): void {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    // ws destroys the socket when the peer has not closed within handshake.close_grace_ms (the
    // broker's closeTimeout).
    this.#ws.close(code);
    // ws ends the socket once both close frames have crossed; from then on nothing the peer sends
    // matters, so the connection is released when our FIN has left rather than when the peer's
    // arrives. Waiting for the peer's FIN costs two stack-traced errors per connection (ws ends
    // its receiver and the already finished socket a second time: ERR_STREAM_ALREADY_FINISHED,
    // 18 to 29 µs per handshake in the pinned profile, docs/benchmarks.md). The peer still sees
    // both close frames and an orderly FIN: no data is left unread, so the kernel sends no RST.
    this.#socket.once('finish', () => this.#socket.destroy());
  }
}
