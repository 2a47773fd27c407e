/**
 * Fixed bounds of the wire format. They are part of the protocol (a message that exceeds one is
 * INVALID_MESSAGE), not operational tuning, so they live here rather than in the config schema;
 * the overall message size limit (handshake.max_message_bytes, default 64 KiB) is the configurable
 * outer bound and every value below fits well inside it. docs/protocol.md lists them with reasons.
 */
/** The handshake WebSocket's path (shared/spec/handshake.md section 2): the one place it is written. */
export const HANDSHAKE_PATH = '/ws/handshake';

export const PROTOCOL_BOUNDS = {
  /** patient_agent_id and connection_id: room for a UUID, a DID (did:key is ~56 chars) or a URL-like id, small enough to index and log. */
  agentIdMaxChars: 256,
  connectionIdMaxChars: 256,
  /** patient_endpoint / provider_endpoint: 2048 is the long-standing practical URL ceiling. */
  endpointMaxChars: 2048,
  /** Consent token payload text: 16 KiB of base64url (12 KiB of claims JSON) holds the largest action list below with room for extra claims. */
  tokenPayloadMaxChars: 16 * 1024,
  /** Consented actions: 64 entries of up to 128 chars each; the Neuron stores them verbatim, so bound what it stores. */
  actionsMaxCount: 64,
  actionMaxChars: 128,
  /** Attestation payload text: our attestation is ~1 KiB plus the actions (at most ~9 KiB), so 16 KiB is ample. */
  attestationPayloadMaxChars: 16 * 1024,
  /** Front-desk profile: a display name (names longer than 200 chars are not real), a BCP 47 tag (35 chars per RFC 5646 section 4.4.1). */
  displayNameMaxChars: 200,
  preferredLanguageMaxChars: 35,
  /** handshake.error message text: a short sentence. */
  errorMessageMaxChars: 256,
} as const;

/**
 * Names shown to people (a patient's display_name, a provider's or the organization's name): no C0
 * control characters or DEL, and no Unicode bidirectional controls (U+061C, U+200E, U+200F,
 * U+202A-U+202E, U+2066-U+2069). Those reorder what follows them on screen, so a name could read as
 * another person's or hide text in the roster, the directory or an audit view ("Trojan Source").
 * Refused rather than stripped: the Neuron stores exactly what it was sent, or nothing.
 */
export const DISPLAY_TEXT_PATTERN = '^[^\\u0000-\\u001F\\u007F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]+$';
/** What DISPLAY_TEXT_PATTERN refuses, for problem messages. */
export const DISPLAY_TEXT_RULE =
  'must not contain control characters or Unicode bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)';
/** DISPLAY_TEXT_PATTERN as a RegExp, for checks outside a JSON schema. */
export const DISPLAY_TEXT = new RegExp(DISPLAY_TEXT_PATTERN);
