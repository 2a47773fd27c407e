// A third-party consumer of the packed client package (scripts/check-client-package.sh): it uses
// the public API with its types, so a declaration that names a type the install lacks fails to
// compile. Compiled only, never run.
import {
  AttestationError,
  FeedError,
  HandshakeError,
  createConsentToken,
  establishRelationship,
  generatePatientKeys,
  readProviderFeed,
  verifyAttestation,
  verifyProviderNotice,
  type Attestation,
  type FeedPage,
  type HandshakeErrorCode,
  type PatientKeys,
  type RelationshipNotice,
  type RelationshipResult,
} from 'neuron-careagent-client';
import {
  ProtocolError,
  parseServerMessage,
  verifyConsentToken,
  type ConsentClaims,
  type ServerMessage,
} from 'neuron-careagent-client/protocol';

const keys: PatientKeys = generatePatientKeys();
const consentToken = createConsentToken(
  { patientAgentId: 'patient-agent-123', providerNpi: '1679576722', consentedActions: ['office_visit'] },
  keys,
);

export async function connect(): Promise<RelationshipResult | HandshakeErrorCode> {
  try {
    return await establishRelationship('wss://neuron.example/ws/handshake', {
      patientAgentId: 'patient-agent-123',
      keys,
      endpoint: 'wss://patient.example/agent',
      consentToken,
      wsOptions: { headers: { 'user-agent': 'example-agent' } },
    });
  } catch (error) {
    if (error instanceof HandshakeError) return error.code as HandshakeErrorCode;
    throw error;
  }
}

export function checkNotice(body: Uint8Array, header: string | undefined, neuronKey: string): RelationshipNotice | null {
  if (!verifyProviderNotice(body, header, neuronKey)) return null;
  return JSON.parse(new TextDecoder().decode(body)) as RelationshipNotice;
}

export async function pull(after: string | null): Promise<Attestation[]> {
  let page: FeedPage;
  try {
    page = await readProviderFeed({ neuronUrl: 'https://neuron.example', npi: '1679576722', credential: 'nprv_x', after });
  } catch (error) {
    if (error instanceof FeedError && error.status === 401) return [];
    throw error;
  }
  const attested: Attestation[] = [];
  for (const notice of page.items) {
    try {
      attested.push(
        verifyAttestation(notice.attestation, 'A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg', {
          provider_npi: '1679576722',
          patient_public_key: notice.patient_public_key,
        }),
      );
    } catch (error) {
      if (!(error instanceof AttestationError)) throw error;
    }
  }
  return attested;
}

export function serverSide(text: string): ServerMessage | ConsentClaims | string {
  try {
    const message = parseServerMessage(text);
    if (message.type !== 'handshake.challenge') return message;
    return verifyConsentToken({
      payloadB64: consentToken.payload,
      signatureB64: consentToken.signature,
      patientPublicKey: keys.publicKey,
      patientAgentId: 'patient-agent-123',
      now: Date.now(),
    });
  } catch (error) {
    if (error instanceof ProtocolError) return `${error.code}${error.reason === undefined ? '' : `/${error.reason}`}`;
    throw error;
  }
}
