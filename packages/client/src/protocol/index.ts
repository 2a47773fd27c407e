/** The pure handshake protocol layer: encodings, message schemas, token, challenge, attestation. No I/O. */
export * from './base64url.ts';
export * from './errors.ts';
export * from './json-keys.ts';
export * from './schema-check.ts';
export * from './keys.ts';
export * from './limits.ts';
export * from './time.ts';
export * from './messages.ts';
export * from './consent-token.ts';
export * from './challenge.ts';
export * from './attestation.ts';
export * from './receipt.ts';
export * from './notice.ts';
export * from './merkle.ts';
