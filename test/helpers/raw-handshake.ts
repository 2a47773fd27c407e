/**
 * A hand-driven handshake client for tests that need to send exactly what they want (wrong
 * order, bad frames, stalls, replays), unlike src/client which only speaks the protocol correctly.
 */
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { createConsentToken, generatePatientKeys, type PatientKeys } from 'neuron-careagent-client';
import { signChallenge } from 'neuron-careagent-client/protocol';

export interface Frame {
  type: string;
  [field: string]: unknown;
}

export interface RawHandshake {
  ws: WebSocket;
  /** Every text frame received so far, parsed. */
  frames: Frame[];
  /** Resolves with the next frame not yet taken by next(). */
  next(timeoutMs?: number): Promise<Frame>;
  send(message: unknown): void;
  /** Resolves once the connection is closed, with the close code and whether the closing handshake completed (RFC 6455 7.1.4). */
  closed: Promise<{ code: number; reason: string; wasClean: boolean }>;
}

/** Opens a WebSocket to the handshake URL; rejects when the upgrade is refused. */
export function openRaw(url: string, options: { maxPayload?: number } = {}): Promise<RawHandshake> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: options.maxPayload ?? 1024 * 1024 });
    const frames: Frame[] = [];
    let taken = 0;
    const waiting: Array<(frame: Frame) => void> = [];
    const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((done) => {
      ws.addEventListener('close', (event) => done({ code: event.code, reason: event.reason, wasClean: event.wasClean }));
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      frames.push(frame);
      const waiter = waiting.shift();
      if (waiter) {
        taken += 1;
        waiter(frame);
      }
    });
    ws.on('error', (error) => reject(error));
    ws.on('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, headers: res.headers })),
    );
    ws.on('open', () =>
      resolve({
        ws,
        frames,
        closed,
        send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
        next: (timeoutMs = 5_000) =>
          new Promise<Frame>((done, fail) => {
            if (taken < frames.length) {
              done(frames[taken++]!);
              return;
            }
            const timer = setTimeout(() => fail(new Error('no frame arrived in time')), timeoutMs);
            waiting.push((frame) => {
              clearTimeout(timer);
              done(frame);
            });
            void closed.then(() => {
              clearTimeout(timer);
              fail(new Error('closed without another frame'));
            });
          }),
      }),
    );
  });
}

export interface Patient {
  agentId: string;
  keys: PatientKeys;
  endpoint: string;
}

export function newPatient(agentId: string, keys: PatientKeys = generatePatientKeys()): Patient {
  return { agentId, keys, endpoint: `wss://${agentId}.patients.example/agent` };
}

/** The handshake.auth message for a patient, with a fresh dialect A token unless one is given. */
export function authMessage(
  patient: Patient,
  providerNpi: string,
  extra: Record<string, unknown> = {},
  token?: { payload: string; signature: string },
): Record<string, unknown> {
  const consent =
    token ?? createConsentToken({ patientAgentId: patient.agentId, providerNpi, consentedActions: ['office_visit'] }, patient.keys);
  return {
    type: 'handshake.auth',
    patient_agent_id: patient.agentId,
    patient_public_key: patient.keys.publicKeyB64,
    patient_endpoint: patient.endpoint,
    consent_token_payload: consent.payload,
    consent_token_signature: consent.signature,
    ...extra,
  };
}

export function challengeResponse(patient: Patient, nonceHex: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'handshake.challenge_response', signed_nonce: signChallenge(nonceHex, patient.keys.privateKey), ...extra };
}

/** Sends handshake.auth and returns the challenge frame (asserting it is one). */
export async function authenticate(raw: RawHandshake, patient: Patient, providerNpi: string): Promise<Frame> {
  raw.send(authMessage(patient, providerNpi));
  const frame = await raw.next();
  if (frame.type !== 'handshake.challenge') throw new Error(`expected a challenge, got ${JSON.stringify(frame)}`);
  return frame;
}

export interface RawHttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends an upgrade-like request with exactly these headers and reads the plain HTTP answer. */
export function rawUpgrade(port: number, path: string, headers: Record<string, string>, method = 'GET'): Promise<RawHttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, setHost: false });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('upgrade', (res, socket: Socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, headers: res.headers, body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Valid WebSocket upgrade headers for rawUpgrade. */
export function upgradeHeaders(port: number): Record<string, string> {
  return {
    host: `127.0.0.1:${port}`,
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  };
}

/**
 * A raw TCP upgrade request to /ws/handshake that waits for its answer (it sits in the admission
 * queue until a slot frees, or is refused); `answer` is everything read until the socket closes.
 */
export function pendingUpgrade(port: number, extraHeaders: Record<string, string> = {}): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  const headers = { ...upgradeHeaders(port), ...extraHeaders };
  socket.write(
    `GET /ws/handshake HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\r\n')}\r\n\r\n`,
  );
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => undefined);
  });
  return { socket, answer };
}
