import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  createConsentToken as createToken,
  privateKeyFromSeed,
  publicKeyToBase64url,
  type ConsentDialect,
  type ConsentToken,
} from '../protocol/index.ts';

/** A patient CareAgent's Ed25519 identity. */
export interface PatientKeys {
  publicKey: KeyObject;
  privateKey: KeyObject;
  /** The 43-char base64url public key sent as handshake.auth patient_public_key. */
  publicKeyB64: string;
}

export function generatePatientKeys(): PatientKeys {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey, privateKey, publicKeyB64: publicKeyToBase64url(publicKey) };
}

/** Keys from a stored 32-byte Ed25519 seed. */
export function patientKeysFromSeed(seed: Uint8Array): PatientKeys {
  const privateKey = privateKeyFromSeed(seed);
  const publicKey = createPublicKey(privateKey);
  return { publicKey, privateKey, publicKeyB64: publicKeyToBase64url(publicKey) };
}

/** One hour: long enough to reach a Neuron through a queue, short enough to limit replay. */
export const DEFAULT_CONSENT_TTL_SECONDS = 3_600;

export interface ConsentOptions {
  patientAgentId: string;
  providerNpi: string;
  consentedActions: readonly string[];
  /** Defaults to now. Pass null to leave the issue time out of the token. */
  issuedAt?: Date | null;
  /** Defaults to the issue time (or now) plus `ttlSeconds`. */
  expiresAt?: Date;
  ttlSeconds?: number;
}

/** Creates and signs a consent token in dialect A (default) or B. */
export function createConsentToken(options: ConsentOptions, keys: PatientKeys | KeyObject, dialect: ConsentDialect = 'A'): ConsentToken {
  const issuedAt = options.issuedAt === undefined ? new Date() : options.issuedAt;
  const start = issuedAt ?? new Date();
  const expiresAt = options.expiresAt ?? new Date(start.getTime() + (options.ttlSeconds ?? DEFAULT_CONSENT_TTL_SECONDS) * 1000);
  const privateKey = 'privateKey' in keys ? keys.privateKey : keys;
  return createToken(
    {
      patientAgentId: options.patientAgentId,
      providerNpi: options.providerNpi,
      consentedActions: options.consentedActions,
      issuedAt,
      expiresAt,
    },
    privateKey,
    dialect,
  );
}
