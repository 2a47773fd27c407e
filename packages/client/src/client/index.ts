/**
 * `neuron-careagent-client`: the patient side of the consent handshake, and the provider side's
 * checks (a pushed notice's signature, the pull feed, an attestation). The pure protocol layer
 * is `neuron-careagent-client/protocol`. README.md has the one-call examples.
 *
 *   const keys = generatePatientKeys();
 *   const consentToken = createConsentToken({ patientAgentId, providerNpi, consentedActions: ['office_visit'] }, keys);
 *   const result = await establishRelationship('wss://neuron.example/ws/handshake',
 *     { patientAgentId, keys, endpoint: 'wss://me.example/agent', consentToken });
 */
export { createConsentToken, generatePatientKeys, patientKeysFromSeed, DEFAULT_CONSENT_TTL_SECONDS } from './keys.ts';
export type { ConsentOptions, PatientKeys } from './keys.ts';
export { establishRelationship, HandshakeError, DEFAULT_HANDSHAKE_TIMEOUT_MS } from './handshake.ts';
export type { ClientFailureCode, EstablishOptions, HandshakeErrorCode, NeuronHandshakeCode, RelationshipResult } from './handshake.ts';
export { AttestationError, verifyAttestation } from '../protocol/attestation.ts';
export {
  ReceiptError,
  verifyAttestationWithReceipt,
  verifyReceipt,
  verifyReceiptConsistency,
  verifySignedTreeHead,
} from '../protocol/receipt.ts';
export type { AttestationWithReceipt, Receipt, ReceiptEntry, ReceiptFailure, SignedTreeHead } from '../protocol/receipt.ts';
export type { Attestation, AttestationFailure } from '../protocol/attestation.ts';
export type { ConsentDialect, ConsentToken } from '../protocol/consent-token.ts';
export type { PatientProfile, SignedPayload } from '../protocol/messages.ts';
export { readProviderFeed, FeedError, DEFAULT_FEED_TIMEOUT_MS } from './provider.ts';
export type { FeedFailureCode, FeedPage, ReadFeedOptions } from './provider.ts';
export { verifyProviderNotice, NOTICE_HEADERS } from '../protocol/notice.ts';
export type { RelationshipNotice } from '../protocol/notice.ts';
export { ProtocolError } from '../protocol/errors.ts';
export type { ConsentFailureReason, ProtocolErrorCode } from '../protocol/errors.ts';
