/**
 * `neuron/client`: the patient-side library for the consent handshake.
 *
 *   const keys = generatePatientKeys();
 *   const consentToken = createConsentToken({ patientAgentId, providerNpi, consentedActions: ['office_visit'] }, keys);
 *   const result = await establishRelationship('wss://neuron.example/ws/handshake',
 *     { patientAgentId, keys, endpoint: 'wss://me.example/agent', consentToken });
 */
export { createConsentToken, generatePatientKeys, patientKeysFromSeed, DEFAULT_CONSENT_TTL_SECONDS } from './keys.ts';
export type { ConsentOptions, PatientKeys } from './keys.ts';
export { establishRelationship, HandshakeError, DEFAULT_HANDSHAKE_TIMEOUT_MS } from './handshake.ts';
export type { ClientFailureCode, EstablishOptions, HandshakeErrorCode, RelationshipResult } from './handshake.ts';
export { AttestationError, verifyAttestation } from '../protocol/attestation.ts';
export { ReceiptError, verifyAttestationWithReceipt, verifyReceipt, verifyReceiptConsistency, verifySignedTreeHead } from '../protocol/receipt.ts';
export type { AttestationWithReceipt, Receipt, ReceiptEntry, ReceiptFailure, SignedTreeHead } from '../protocol/receipt.ts';
export type { Attestation, AttestationFailure } from '../protocol/attestation.ts';
export type { ConsentDialect, ConsentToken } from '../protocol/consent-token.ts';
export type { PatientProfile, SignedPayload } from '../protocol/messages.ts';
