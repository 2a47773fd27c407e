/**
 * The public face of the handshake broker.
 */

/** One handshake connection as the broker sees it. In memory only. */
export interface ProtocolSession {
  /** Random id, also written to the `handshake.completed` audit entry. */
  sessionId: string;
  /** The patient agent id from a verified consent token; '' until then. */
  patientAgentId: string;
  /** The provider's NPI (the provider agent's identity on this Neuron) from a verified consent token; '' until then. */
  providerAgentId: string;
  /** When the WebSocket was admitted. */
  startedAt: Date;
  /**
   * `active` while the handshake is in progress; `completed` or `terminated` only during the
   * brief closing exchange after the final frame (the session is dropped when the socket closes).
   */
  status: 'active' | 'completed' | 'terminated';
}

export interface ProtocolServer {
  /**
   * Standalone use: listens on its own HTTP server on `port` (0 picks a free one). Inside the
   * Neuron the broker is attached to the REST server instead and this is not called.
   */
  start(port: number): Promise<void>;
  /** Refuses new upgrades, answers queued ones 503, closes open handshakes with 1001 and waits for their database work. */
  stop(): Promise<void>;
  /** Snapshot of the sessions currently held in memory. */
  activeSessions(): ProtocolSession[];
}
