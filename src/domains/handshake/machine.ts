/**
 * The per-connection handshake state machine as pure transitions (no sockets, no timers, no
 * database): which phase follows which event, what an incoming frame means in each phase, and
 * which client deadline runs in each phase. src/domains/handshake/session.ts performs the effects.
 *
 *   awaiting_auth --auth_accepted--> checking --challenge_sent--> awaiting_response
 *        |                              |                               |
 *        |                              |                      response_verified
 *        |                              |                               v
 *        |                              |                          committing --committed--> completed
 *        +------------------------------+-------------------------------+--fail--> failed
 *                                                                       +--peer_closed--> abandoned
 *
 * `completed`, `failed` and `abandoned` are terminal: nothing leaves them and every later frame
 * is ignored.
 */
import { NeuronError } from '../../foundation/errors/index.ts';

export type Phase = 'awaiting_auth' | 'checking' | 'awaiting_response' | 'committing' | 'completed' | 'failed' | 'abandoned';

export type PhaseEvent =
  /** handshake.auth parsed, patient key imported and consent token verified. */
  | 'auth_accepted'
  /** provider and block checks passed and the challenge went out. */
  | 'challenge_sent'
  /** the challenge response parsed and its signature verified. */
  | 'response_verified'
  /** the relationship transaction committed and handshake.complete went out. */
  | 'committed'
  /** any failure: an error frame (or a 1009/1001 close) ends the session. */
  | 'fail'
  /** the client closed the connection before a terminal phase. */
  | 'peer_closed';

const TERMINAL: ReadonlySet<Phase> = new Set<Phase>(['completed', 'failed', 'abandoned']);

const FORWARD: Readonly<Partial<Record<Phase, Partial<Record<PhaseEvent, Phase>>>>> = {
  awaiting_auth: { auth_accepted: 'checking' },
  checking: { challenge_sent: 'awaiting_response' },
  awaiting_response: { response_verified: 'committing' },
  committing: { committed: 'completed' },
};

export function isTerminal(phase: Phase): boolean {
  return TERMINAL.has(phase);
}

/**
 * The phase after `event`, or null when the event is not allowed in `phase` (a programming
 * error in the I/O layer, never a client's doing: client input goes through `onFrame`).
 */
export function transition(phase: Phase, event: PhaseEvent): Phase | null {
  if (TERMINAL.has(phase)) return null;
  if (event === 'fail') return 'failed';
  if (event === 'peer_closed') return 'abandoned';
  return FORWARD[phase]?.[event] ?? null;
}

export type FrameDecision =
  | { action: 'ignore' }
  | { action: 'parse'; expected: 'handshake.auth' | 'handshake.challenge_response' }
  | { action: 'reject'; error: NeuronError };

/** What an incoming frame means in `phase`. */
export function onFrame(phase: Phase, isBinary: boolean): FrameDecision {
  if (TERMINAL.has(phase)) return { action: 'ignore' };
  if (isBinary)
    return { action: 'reject', error: new NeuronError('INVALID_MESSAGE', { message: 'binary frames are not part of the protocol' }) };
  switch (phase) {
    case 'awaiting_auth':
      return { action: 'parse', expected: 'handshake.auth' };
    case 'awaiting_response':
      return { action: 'parse', expected: 'handshake.challenge_response' };
    case 'checking':
      // The client spoke before it was challenged.
      return {
        action: 'reject',
        error: new NeuronError('INVALID_MESSAGE', { message: 'message out of order: wait for handshake.challenge' }),
      };
    case 'committing':
      // A second challenge response (a replay on the same connection) or anything else.
      return {
        action: 'reject',
        error: new NeuronError('INVALID_MESSAGE', { message: 'message out of order: the challenge was already answered' }),
      };
    default:
      return { action: 'ignore' };
  }
}

export type Deadline = 'auth' | 'challenge';

/** The client deadline running in `phase` (handshake.auth_timeout_ms / challenge_timeout_ms), if any. */
export function deadlineIn(phase: Phase): Deadline | null {
  if (phase === 'awaiting_auth') return 'auth';
  if (phase === 'awaiting_response') return 'challenge';
  return null;
}

/** The error for a passed deadline; the spec uses AUTH_TIMEOUT for both stages. */
export function deadlineError(deadline: Deadline): NeuronError {
  return new NeuronError('AUTH_TIMEOUT', {
    message: deadline === 'auth' ? 'no handshake.auth arrived in time' : 'no challenge response arrived in time',
  });
}

/** ProtocolSession status of a phase. */
export function statusOf(phase: Phase): 'active' | 'completed' | 'terminated' {
  if (phase === 'completed') return 'completed';
  return TERMINAL.has(phase) ? 'terminated' : 'active';
}
