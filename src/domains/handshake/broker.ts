/**
 * The handshake broker: the `/ws/handshake` WebSocket on the Neuron's one HTTP(S) server.
 *
 * An upgrade request goes: path check (else 404) -> shape check (else 400) -> admission (a slot
 * at once, or the FIFO queue with a deadline, or 503 when the queue is full) -> ws handleUpgrade
 * -> a HandshakeSession. The WebSocket is opened only once the upgrade holds a slot, so a queued
 * client costs a socket and a queue node, nothing more, and refusals are plain HTTP answers.
 * Before admission, one client address (src/foundation/rest/client-address.ts, server.trusted_proxies) may
 * have at most handshake.max_pending_per_address upgrades queued or in progress; beyond that it
 * gets 503 + Retry-After like a full queue. Its count is released exactly once: on refusal, on
 * leaving the queue, or with the slot when its handshake ends.
 *
 * The socket gets an 'error' handler before anything else happens to it, so a client that resets
 * the connection at any point never takes the process down.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, STATUS_CODES } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import type { NeuronConfig } from '../../foundation/config/index.ts';
import { NeuronError, PROBLEM_CONTENT_TYPE, toProblem, type ErrorCode } from '../../foundation/errors/index.ts';
import { createNonce, HANDSHAKE_PATH, type Nonce } from 'neuron-careagent-client/protocol';
import { createClientAddress, type ClientAddress } from '../../foundation/rest/client-address.ts';
import { AddressCounts, Admission, type Waiter } from './admission.ts';
import { createHandshakeMetrics, type HandshakeMetrics } from './metrics.ts';
import { RepeatedErrorLog } from '../../foundation/observability/repeated-errors.ts';
import { DeadlineList } from './deadlines.ts';
import { HandshakeSession, type SessionDeadlines, type SessionHost, type SessionSettings } from './session.ts';
import { HandshakeService, type HandshakeServiceOptions } from './service.ts';
import type { ProtocolServer, ProtocolSession } from './types.ts';

/** host[:port]: a DNS name or IPv4 address, or a bracketed IPv6 literal. */
const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::\d{1,5})?$/;
/** RFC 6455 section 4.1: the key is 16 random bytes in base64. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

export interface HandshakeBrokerOptions extends HandshakeServiceOptions {
  handshake: NeuronConfig['handshake'];
  logger: Logger;
  /** The Neuron's registry; a private one when omitted (standalone use, tests). */
  metrics?: Registry;
  /** Address for standalone `start(port)`; defaults to loopback. */
  host?: string;
  /** Wall clock in epoch milliseconds for token validity and record times; tests pin it to check fixed-time vectors. Deadlines and the queue run on performance.now(). */
  now?: () => number;
  /** Nonce source; tests pin it to check the spec's challenge vector. */
  createNonce?: () => Nonce;
  /** Called after a handshake committed a notice that is due now (pushed to the provider, or a webhook), so delivery starts at once. */
  onNoticeQueued?: () => void;
  /** server.trusted_proxies: whose X-Forwarded-For names the client address; default nobody's. */
  trustedProxies?: readonly string[];
}

/** An upgrade request from arrival until its WebSocket opens or it is refused. */
interface Upgrade {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  arrivedTick: number;
  /** Bytes the client sent while queued (it should send none before the 101). */
  early: Buffer[];
  earlyBytes: number;
  waiter: Waiter<Upgrade> | null;
  /** The client address this upgrade counts against, until its count is released (then null). */
  address: string | null;
  settled: boolean;
  cleanup: () => void;
}

export class HandshakeBroker implements ProtocolServer, SessionHost {
  readonly service: HandshakeService;
  readonly settings: SessionSettings;
  readonly deadlines: SessionDeadlines;
  readonly logger: Logger;
  readonly repeatedErrors: RepeatedErrorLog;
  readonly #limits: NeuronConfig['handshake'];
  readonly #admission: Admission<Upgrade>;
  readonly #clientAddress: ClientAddress;
  readonly #perAddress: AddressCounts;
  /** The client address each admitted session counts against, released when it ends. */
  readonly #sessionAddresses = new Map<HandshakeSession, string>();
  readonly #metrics: HandshakeMetrics;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<string, HandshakeSession>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #clock: () => number;
  readonly #nonceSource: () => Nonce;
  readonly #host: string;
  readonly #onNoticeQueued: () => void;
  #servers: Array<HttpServer | HttpsServer> = [];
  #ownServer: HttpServer | null = null;
  #queueTimer: NodeJS.Timeout | undefined;
  #queueTimerAt = Infinity;
  #stopping: Promise<void> | null = null;
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#handleUpgradeRequest(req, socket, head);

  constructor(options: HandshakeBrokerOptions) {
    this.service = new HandshakeService({ ...options, failureAuditBatchMax: options.handshake.failure_audit_batch_max });
    this.#limits = options.handshake;
    this.logger = options.logger;
    this.repeatedErrors = new RepeatedErrorLog({ logger: options.logger });
    this.#host = options.host ?? '127.0.0.1';
    this.#clock = options.now ?? Date.now;
    this.#nonceSource = options.createNonce ?? createNonce;
    this.#onNoticeQueued = options.onNoticeQueued ?? (() => undefined);
    this.settings = {
      authTimeoutMs: options.handshake.auth_timeout_ms,
      challengeTimeoutMs: options.handshake.challenge_timeout_ms,
      clockSkewMs: options.handshake.clock_skew_seconds * 1_000,
    };
    this.deadlines = {
      auth: new DeadlineList({ spanMs: this.settings.authTimeoutMs, onDue: (session) => session.deadlinePassed('auth') }),
      challenge: new DeadlineList({ spanMs: this.settings.challengeTimeoutMs, onDue: (session) => session.deadlinePassed('challenge') }),
    };
    this.#admission = new Admission<Upgrade>({
      maxActive: options.handshake.max_concurrent_handshakes,
      maxQueued: options.handshake.max_queued,
      queueTimeoutMs: options.handshake.queue_timeout_ms,
    });
    this.#clientAddress = createClientAddress(options.trustedProxies ?? []);
    this.#perAddress = new AddressCounts(options.handshake.max_pending_per_address);
    this.#metrics = createHandshakeMetrics(options.metrics ?? new Registry(), {
      active: () => this.#admission.active,
      queued: () => this.#admission.queued,
    });
    // A variable rather than a literal: closeTimeout (ws 8.19 and later) is not in @types/ws 8.18.
    const wsOptions = {
      noServer: true,
      perMessageDeflate: false, // spec section 2
      maxPayload: options.handshake.max_message_bytes, // larger frames close with 1009
      clientTracking: false, // the sessions map tracks what we need
      // After our close frame, how long the peer has to close before ws destroys the socket: the
      // close grace, on the timer ws sets anyway for every close (no second one of our own).
      closeTimeout: options.handshake.close_grace_ms,
    };
    this.#wss = new WebSocketServer(wsOptions);
  }

  // ---- ProtocolServer ----

  /** Routes `/ws/handshake` upgrades of an existing HTTP(S) server (the Neuron's REST server). */
  attach(server: HttpServer | HttpsServer): void {
    if (this.#stopping) throw new Error('the handshake broker is stopped');
    server.on('upgrade', this.#onUpgrade);
    this.#servers.push(server);
  }

  async start(port: number): Promise<void> {
    if (this.#ownServer) throw new Error('the handshake broker is already listening');
    const server = createServer((_req, res) => {
      const error = new NeuronError('ROUTE_NOT_FOUND');
      res.writeHead(error.status, { 'content-type': PROBLEM_CONTENT_TYPE }).end(JSON.stringify(toProblem(error)));
    });
    this.#ownServer = server;
    this.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.#host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** The bound port of a standalone broker. */
  port(): number {
    const address = this.#ownServer?.address();
    if (!address || typeof address !== 'object') throw new Error('the handshake broker is not listening on its own');
    return address.port;
  }

  async stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      clearTimeout(this.#queueTimer);
      for (const waiter of this.#admission.drain()) this.#refuse(waiter.value, 'SHUTTING_DOWN');
      // Open handshakes close with 1001; wait for their sockets to close (bounded by handshake.close_grace_ms).
      const closeWaiters = new Map<string, () => void>();
      this.#onSessionClosed = (id) => closeWaiters.get(id)?.();
      const closing = [...this.#sessions.values()].map(
        (session) =>
          new Promise<void>((resolve) => {
            closeWaiters.set(session.id, resolve);
            session.shutdown();
          }),
      );
      await Promise.all(closing);
      // Database work of sessions that ended (failure audits, a commit that is rolling back).
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
      for (const list of Object.values(this.deadlines)) list.clear();
      for (const server of this.#servers) server.off('upgrade', this.#onUpgrade);
      // Keep answering upgrades that still arrive before the HTTP server closes.
      for (const server of this.#servers) if (server !== this.#ownServer) server.on('upgrade', this.#refuseLate);
      this.#wss.close();
      if (this.#ownServer) {
        const server = this.#ownServer;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
      }
    })();
    return this.#stopping;
  }

  activeSessions(): ProtocolSession[] {
    const list: ProtocolSession[] = [];
    for (const session of this.#sessions.values()) list.push(session.snapshot());
    return list;
  }

  /** Current admission counts (also exported as metrics). */
  load(): { active: number; queued: number } {
    return { active: this.#admission.active, queued: this.#admission.queued };
  }

  /** Upgrades counted against handshake.max_pending_per_address: addresses with any, and their sum. */
  addressLoad(): { addresses: number; pending: number } {
    return { addresses: this.#perAddress.addresses, pending: this.#perAddress.total };
  }

  // ---- SessionHost ----

  now(): number {
    return this.#clock();
  }

  createNonce(): Nonce {
    return this.#nonceSource();
  }

  ended(session: HandshakeSession, outcome: string, failed: boolean): void {
    const seconds = (performance.now() - session.startedTick) / 1_000;
    this.#metrics.outcome(outcome);
    this.#metrics.duration(failed ? 'failed' : 'completed', seconds);
    // One line per handshake for the operator: no agent id, key or name, only what the session
    // was, how it ended and how long it took (the audit log has the parties). Built only when
    // info is logged, and as one flat object pino writes as it is.
    if (this.logger.isLevelEnabled('info')) {
      const durationMs = Math.round(seconds * 10_000) / 10;
      this.logger.info(
        failed && outcome !== 'abandoned'
          ? { session_id: session.id, outcome, duration_ms: durationMs, error_code: outcome }
          : { session_id: session.id, outcome, duration_ms: durationMs },
        'handshake ended',
      );
    }
    const address = this.#sessionAddresses.get(session);
    if (address !== undefined) {
      this.#sessionAddresses.delete(session);
      this.#perAddress.release(address);
    }
    this.#releaseSlot();
  }

  deliveryQueued(): void {
    this.#onNoticeQueued();
  }

  closed(session: HandshakeSession): void {
    this.#sessions.delete(session.id);
    this.#onSessionClosed(session.id);
  }

  track(work: Promise<unknown>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  #onSessionClosed: (id: string) => void = () => undefined;

  // ---- upgrade path ----

  readonly #refuseLate = (_req: IncomingMessage, socket: Duplex): void => {
    socket.on('error', ignoreSocketError);
    writeRefusal(socket, new NeuronError('SHUTTING_DOWN', { headers: { 'retry-after': String(this.#limits.retry_after_seconds) } }));
  };

  #handleUpgradeRequest(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreSocketError);
    const path = pathOf(req.url);
    if (path !== HANDSHAKE_PATH) {
      writeRefusal(socket, new NeuronError('ROUTE_NOT_FOUND', { message: 'no WebSocket endpoint at this path' }), path);
      return;
    }
    const shape = upgradeProblem(req);
    if (shape !== null) {
      writeRefusal(socket, shape);
      return;
    }
    if (this.#stopping) {
      this.#countRefusal('SHUTTING_DOWN');
      writeRefusal(socket, this.#unavailable('SHUTTING_DOWN'));
      return;
    }

    const address = this.#clientAddress.limitKeyOf(req);
    if (!this.#perAddress.acquire(address)) {
      this.#countRefusal('HANDSHAKE_ADDRESS_LIMIT');
      writeRefusal(socket, this.#unavailable('HANDSHAKE_ADDRESS_LIMIT'));
      return;
    }
    const upgrade: Upgrade = {
      req,
      socket,
      head,
      arrivedTick: performance.now(),
      early: [],
      earlyBytes: 0,
      waiter: null,
      address,
      settled: false,
      cleanup: () => undefined,
    };
    const entered = this.#admission.enter(upgrade, performance.now());
    if (entered.outcome === 'admitted') {
      this.#metrics.queueWait(0);
      this.#open(upgrade);
      return;
    }
    if (entered.outcome === 'full') {
      this.#refuse(upgrade, 'HANDSHAKE_QUEUE_FULL');
      return;
    }
    upgrade.waiter = entered.waiter;
    this.#watchQueued(upgrade);
    this.#armQueueTimer();
  }

  /** While queued, notice at once when the client goes away, and keep anything it sends early. */
  #watchQueued(upgrade: Upgrade): void {
    const { socket } = upgrade;
    const gone = (): void => {
      if (upgrade.settled || upgrade.waiter === null) return;
      if (this.#admission.leave(upgrade.waiter)) {
        upgrade.settled = true;
        upgrade.cleanup();
        this.#releaseAddress(upgrade);
        socket.destroy();
        this.#metrics.outcome('abandoned');
      }
    };
    const onData = (chunk: Buffer): void => {
      upgrade.earlyBytes += chunk.length;
      // A client should send nothing before the 101; cap what it can make us hold.
      if (upgrade.earlyBytes > this.#limits.max_message_bytes) return gone();
      upgrade.early.push(chunk);
    };
    socket.on('data', onData);
    socket.on('end', gone);
    socket.on('close', gone);
    upgrade.cleanup = () => {
      socket.off('data', onData);
      socket.off('end', gone);
      socket.off('close', gone);
    };
  }

  /** Hands an upgrade that holds a slot to ws and starts its session. */
  #open(upgrade: Upgrade): void {
    upgrade.settled = true;
    upgrade.cleanup();
    const { req, socket } = upgrade;
    // No pause between our listener and ws's: handleUpgrade attaches its 'data' listener synchronously.
    if (upgrade.waiter !== null) this.#metrics.queueWait((performance.now() - upgrade.arrivedTick) / 1_000);
    const head = upgrade.early.length === 0 ? upgrade.head : Buffer.concat([upgrade.head, ...upgrade.early]);
    let accepted = false;
    try {
      this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        accepted = true;
        const session = new HandshakeSession({ ws, host: this, socket });
        this.#sessions.set(session.id, session);
        // The session now carries the address's count; ended() releases it with the slot.
        if (upgrade.address !== null) this.#sessionAddresses.set(session, upgrade.address);
        upgrade.address = null;
        session.begin();
      });
    } catch (error) {
      this.logger.error({ err: error }, 'handshake upgrade failed');
      socket.destroy();
    }
    // ws answered the upgrade itself (a header it rejects) or the socket was already closing.
    if (!accepted) {
      this.#metrics.outcome('INVALID_MESSAGE');
      this.#releaseAddress(upgrade);
      this.#releaseSlot();
    }
  }

  /** Releases the upgrade's per-address count if it still holds it (exactly once). */
  #releaseAddress(upgrade: Upgrade): void {
    if (upgrade.address === null) return;
    this.#perAddress.release(upgrade.address);
    upgrade.address = null;
  }

  #releaseSlot(): void {
    const next = this.#admission.release();
    if (next !== null) this.#open(next.value);
  }

  // ---- queue deadline ----

  #armQueueTimer(): void {
    const due = this.#admission.nextExpiry();
    if (due === null || due >= this.#queueTimerAt) return;
    clearTimeout(this.#queueTimer);
    this.#queueTimerAt = due;
    this.#queueTimer = setTimeout(() => this.#expireQueue(), Math.max(due - performance.now(), 0));
  }

  #expireQueue(): void {
    this.#queueTimerAt = Infinity;
    this.#queueTimer = undefined;
    for (const waiter of this.#admission.expire(performance.now())) this.#refuse(waiter.value, 'HANDSHAKE_QUEUE_TIMEOUT');
    this.#armQueueTimer();
  }

  // ---- refusals ----

  #unavailable(code: 'HANDSHAKE_QUEUE_FULL' | 'HANDSHAKE_QUEUE_TIMEOUT' | 'HANDSHAKE_ADDRESS_LIMIT' | 'SHUTTING_DOWN'): NeuronError {
    return new NeuronError(code, { headers: { 'retry-after': String(this.#limits.retry_after_seconds) } });
  }

  #refuse(upgrade: Upgrade, code: 'HANDSHAKE_QUEUE_FULL' | 'HANDSHAKE_QUEUE_TIMEOUT' | 'SHUTTING_DOWN'): void {
    if (upgrade.settled) return;
    upgrade.settled = true;
    upgrade.cleanup();
    this.#releaseAddress(upgrade);
    this.#countRefusal(code);
    writeRefusal(upgrade.socket, this.#unavailable(code));
  }

  #countRefusal(code: ErrorCode): void {
    this.#metrics.outcome(code);
  }
}

function ignoreSocketError(): void {
  // A reset or broken pipe on an upgrade socket: the 'close' that follows does the cleanup.
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** The checks ws would make, done before admission so a malformed upgrade never waits for or takes a slot. */
function upgradeProblem(req: IncomingMessage): NeuronError | null {
  const invalid = (message: string): NeuronError => new NeuronError('INVALID_MESSAGE', { message });
  if (req.method !== 'GET') return invalid('a WebSocket upgrade must be a GET request');
  // RFC 9112 section 3.2: exactly one Host header with a valid host[:port], else 400.
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts += 1;
  if (hosts !== 1 || !HOST_HEADER.test(req.headers.host ?? '')) return invalid('missing or invalid Host header');
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return invalid('the Upgrade header must be websocket');
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !WEBSOCKET_KEY.test(key)) return invalid('missing or invalid Sec-WebSocket-Key header');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    return new NeuronError('INVALID_MESSAGE', {
      message: 'unsupported Sec-WebSocket-Version; use 13',
      headers: { 'sec-websocket-version': '13' },
    });
  }
  return null;
}

/** A plain HTTP answer on an upgrade socket (no WebSocket was opened), then the socket is closed. */
function writeRefusal(socket: Duplex, error: NeuronError, instance: string = HANDSHAKE_PATH): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  // Like every HTTP answer, a refused upgrade has a request id (header and problem); the upgrade
  // never reaches fastify, so it is made here.
  const requestId = randomUUID();
  const body = JSON.stringify(toProblem(error, instance, requestId));
  const headers = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}`,
    'Connection: close',
    `Content-Type: ${PROBLEM_CONTENT_TYPE}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    ...Object.entries(error.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
