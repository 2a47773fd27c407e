// The client against a small spec-following WebSocket server built from the protocol layer
// (the real server lives in src/domains/handshake/).
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  ProtocolError,
  createNonce,
  encodeErrorFrame,
  importPatientPublicKey,
  parseClientMessage,
  publicKeyToBase64url,
  signAttestation,
  verifyChallengeResponse,
  verifyConsentToken,
  type HandshakeAuth,
  type PatientProfile,
} from '../protocol/index.ts';
import { createConsentToken, establishRelationship, generatePatientKeys, HandshakeError, type PatientKeys } from './index.ts';

const ORG_NPI = '1245319599';
const PROVIDER_NPI = '1679576722';
const PROVIDER_ENDPOINT = 'https://provider.example/agent';
const neuronKeys = generateKeyPairSync('ed25519');
const NEURON_KEY = publicKeyToBase64url(neuronKeys.publicKey);

/** The spec's close codes (shared/spec/handshake.md section 5) for the codes this stand-in sends. */
const CLOSE_CODES: Readonly<Record<string, number>> = {
  INVALID_MESSAGE: 4002,
  CONSENT_FAILED: 4003,
  CHALLENGE_FAILED: 4003,
  PROVIDER_NOT_FOUND: 4004,
  MESSAGE_TOO_LARGE: 1009,
};

/** A refusal of the stand-in's own (the protocol layer throws ProtocolError for the others). */
class Refusal extends Error {
  constructor(readonly code: string) {
    super(code.toLowerCase().replaceAll('_', ' '));
  }
}

type Mode = 'normal' | 'busy' | 'silent' | 'bad-attestation';

/** Test-only server: enough of the spec to exercise the client. */
class TestNeuron {
  mode: Mode = 'normal';
  readonly profiles: Array<PatientProfile | undefined> = [];
  readonly #relationships = new Map<string, string>(); // patient key + npi -> relationship id
  readonly #http: Server;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
  url = '';

  constructor() {
    this.#http = createServer((_req, res) => res.writeHead(404).end());
    this.#http.on('upgrade', (req, socket, head) => {
      if (req.url !== '/ws/handshake') {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (this.mode === 'busy') {
        const body = JSON.stringify({ code: 'HANDSHAKE_QUEUE_FULL', status: 503, detail: 'Too many handshakes are waiting; retry later' });
        socket.end(
          `HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#session(ws));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#http.listen(0, '127.0.0.1', resolve));
    this.url = `ws://127.0.0.1:${(this.#http.address() as AddressInfo).port}/ws/handshake`;
  }

  async stop(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #session(ws: WebSocket): void {
    let step: 'auth' | 'response' | 'done' = 'auth';
    let auth: HandshakeAuth;
    let nonce = createNonce();
    let key: ReturnType<typeof importPatientPublicKey>;
    let actions: string[] = [];
    const failWith = (error: unknown): void => {
      const refusal = error instanceof ProtocolError || error instanceof Refusal ? error : new Refusal('SERVER_ERROR');
      ws.send(encodeErrorFrame(refusal));
      ws.close(CLOSE_CODES[refusal.code] ?? 1011);
      step = 'done';
    };
    ws.on('message', (data, isBinary) => {
      if (this.mode === 'silent') return;
      try {
        if (isBinary) throw new Refusal('INVALID_MESSAGE');
        const text = data.toString();
        if (step === 'auth') {
          auth = parseClientMessage(text, 'handshake.auth');
          key = importPatientPublicKey(auth.patient_public_key);
          const claims = verifyConsentToken({
            payloadB64: auth.consent_token_payload,
            signatureB64: auth.consent_token_signature,
            patientPublicKey: key,
            patientAgentId: auth.patient_agent_id,
            now: Date.now(),
          });
          if (claims.providerNpi !== PROVIDER_NPI) throw new Refusal('PROVIDER_NOT_FOUND');
          actions = claims.consentedActions;
          nonce = createNonce();
          ws.send(JSON.stringify({ type: 'handshake.challenge', nonce: nonce.hex, provider_npi: PROVIDER_NPI, organization_npi: ORG_NPI }));
          step = 'response';
        } else if (step === 'response') {
          const response = parseClientMessage(text, 'handshake.challenge_response');
          if (!verifyChallengeResponse(nonce.bytes, response.signed_nonce, key)) throw new Refusal('CHALLENGE_FAILED');
          this.profiles.push(response.patient_profile);
          const slot = `${auth.patient_public_key}/${PROVIDER_NPI}`;
          const existing = this.#relationships.get(slot);
          const relationshipId = existing ?? randomUUID();
          this.#relationships.set(slot, relationshipId);
          const attestation = signAttestation(
            {
              relationship_id: relationshipId,
              patient_agent_id: auth.patient_agent_id,
              patient_public_key: auth.patient_public_key,
              provider_npi: PROVIDER_NPI,
              provider_public_key: null,
              consented_actions: this.mode === 'bad-attestation' ? ['something_else'] : actions,
              organization_npi: ORG_NPI,
              issued_at: new Date().toISOString(),
              neuron_public_key: NEURON_KEY,
            },
            neuronKeys.privateKey,
          );
          ws.send(
            JSON.stringify({
              type: 'handshake.complete',
              status: existing === undefined ? 'new' : 'existing',
              relationship_id: relationshipId,
              provider_npi: PROVIDER_NPI,
              provider_endpoint: PROVIDER_ENDPOINT,
              consented_actions: actions,
              attestation,
              neuron_public_key: NEURON_KEY,
            }),
          );
          ws.close(1000);
          step = 'done';
        } else {
          throw new Refusal('INVALID_MESSAGE');
        }
      } catch (error) {
        failWith(error);
      }
    });
  }
}

const neuron = new TestNeuron();
before(() => neuron.start());
after(() => neuron.stop());
beforeEach(() => {
  neuron.mode = 'normal';
});

function handshake(
  keys: PatientKeys,
  overrides: {
    expiresAt?: Date;
    providerNpi?: string;
    dialect?: 'A' | 'B';
    pin?: string;
    profile?: PatientProfile;
    timeoutMs?: number;
    url?: string;
    requireReceipt?: boolean;
  } = {},
) {
  const patientAgentId = 'patient-agent-123';
  const consentToken = createConsentToken(
    {
      patientAgentId,
      providerNpi: overrides.providerNpi ?? PROVIDER_NPI,
      consentedActions: ['office_visit', 'lab_results'],
      ...(overrides.expiresAt === undefined ? {} : { issuedAt: null, expiresAt: overrides.expiresAt }),
    },
    keys,
    overrides.dialect ?? 'A',
  );
  return establishRelationship(overrides.url ?? neuron.url, {
    patientAgentId,
    keys,
    endpoint: 'wss://patient.example/agent',
    consentToken,
    connectionId: 'grant-1',
    ...(overrides.profile === undefined ? {} : { profile: overrides.profile }),
    ...(overrides.pin === undefined ? {} : { expectedNeuronPublicKey: overrides.pin }),
    timeoutMs: overrides.timeoutMs ?? 5_000,
    ...(overrides.requireReceipt === undefined ? {} : { requireReceipt: overrides.requireReceipt }),
  });
}

async function rejectsWith(promise: Promise<unknown>, expected: Partial<HandshakeError>): Promise<HandshakeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HandshakeError, String(error));
    for (const [field, value] of Object.entries(expected)) assert.equal(error[field as keyof HandshakeError], value, field);
    return error;
  }
  assert.fail('the handshake should have failed');
}

describe('establishRelationship', () => {
  it('completes the handshake, verifies the attestation and reports existing on a repeat', async () => {
    const keys = generatePatientKeys();
    const profile = { display_name: 'Test Patient', date_of_birth: '1980-01-01' };
    const first = await handshake(keys, { profile, pin: NEURON_KEY });
    assert.equal(first.status, 'new');
    assert.equal(first.providerNpi, PROVIDER_NPI);
    assert.equal(first.organizationNpi, ORG_NPI);
    assert.equal(first.providerEndpoint, PROVIDER_ENDPOINT);
    assert.equal(first.providerPublicKey, null);
    assert.deepEqual(first.consentedActions, ['office_visit', 'lab_results']);
    assert.equal(first.neuronPublicKey, NEURON_KEY);
    assert.equal(first.attested.relationship_id, first.relationshipId);
    assert.equal(first.attested.patient_public_key, keys.publicKeyB64);
    assert.deepEqual(neuron.profiles.at(-1), profile);

    const second = await handshake(keys, { dialect: 'B' });
    assert.equal(second.status, 'existing');
    assert.equal(second.relationshipId, first.relationshipId);
  });

  it('turns an error frame into a HandshakeError with code, reason and close code', async () => {
    await rejectsWith(handshake(generatePatientKeys(), { expiresAt: new Date(Date.now() - 3_600_000) }), {
      code: 'CONSENT_FAILED',
      reason: 'CONSENT_EXPIRED',
      closeCode: 4003,
      message: 'consent token has expired',
    });
    await rejectsWith(handshake(generatePatientKeys(), { providerNpi: '1376841239' }), {
      code: 'PROVIDER_NOT_FOUND',
      closeCode: 4004,
    });
  });

  it('turns a 503 upgrade refusal into a HandshakeError with status and retryAfter', async () => {
    neuron.mode = 'busy';
    const error = await rejectsWith(handshake(generatePatientKeys()), {
      code: 'HANDSHAKE_QUEUE_FULL',
      status: 503,
      retryAfter: 7,
      closeCode: null,
    });
    assert.equal(error.reason, undefined);
  });

  it('refuses a Neuron key other than the pinned one', async () => {
    const other = publicKeyToBase64url(generateKeyPairSync('ed25519').publicKey);
    await rejectsWith(handshake(generatePatientKeys(), { pin: other }), { code: 'NEURON_KEY_MISMATCH' });
  });

  it('refuses an attestation that does not match the result', async () => {
    neuron.mode = 'bad-attestation';
    await rejectsWith(handshake(generatePatientKeys()), { code: 'ATTESTATION_INVALID', reason: 'FIELD_MISMATCH' });
  });

  it('accepts a completion without an audit receipt (a Neuron from before receipts) unless one is required', async () => {
    const result = await handshake(generatePatientKeys());
    assert.equal(result.receipt, null);
    assert.equal(result.treeHead, null);
    await rejectsWith(handshake(generatePatientKeys(), { requireReceipt: true }), { code: 'ATTESTATION_INVALID', reason: 'MISSING' });
  });

  it('reports an unknown path as a refused upgrade, a dead port as a connection failure, and silence as a timeout', async () => {
    await rejectsWith(handshake(generatePatientKeys(), { url: neuron.url.replace('/ws/handshake', '/elsewhere') }), {
      code: 'UPGRADE_REFUSED',
      status: 404,
    });
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    await rejectsWith(handshake(generatePatientKeys(), { url: `ws://127.0.0.1:${port}/ws/handshake` }), { code: 'CONNECTION_FAILED' });
    neuron.mode = 'silent';
    await rejectsWith(handshake(generatePatientKeys(), { timeoutMs: 200 }), { code: 'CLIENT_TIMEOUT' });
  });
});
