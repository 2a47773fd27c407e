import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ProtocolError } from './errors.ts';
import { encodeErrorFrame, parseClientMessage, parseServerMessage } from './messages.ts';
import { publicKeyToBase64url } from './keys.ts';

const KEY = publicKeyToBase64url(generateKeyPairSync('ed25519').publicKey);
const SIG = randomBytes(64).toString('base64url');
const auth = {
  type: 'handshake.auth',
  patient_agent_id: 'patient-agent-123',
  patient_public_key: KEY,
  patient_endpoint: 'wss://patient.example/agent',
  consent_token_payload: Buffer.from('{"a":1}').toString('base64url'),
  consent_token_signature: SIG,
};
const response = { type: 'handshake.challenge_response', signed_nonce: SIG };

function rejects(text: string, expected: 'handshake.auth' | 'handshake.challenge_response', code = 'INVALID_MESSAGE'): void {
  assert.throws(
    () => parseClientMessage(text, expected, { maxMessageBytes: 64 * 1024 }),
    (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, code);
      // never echo the input
      assert.ok(!error.message.includes('patient-agent'), error.message);
      assert.ok(!error.message.includes(KEY.slice(0, 20)));
      return true;
    },
  );
}

describe('handshake.auth', () => {
  it('parses a valid message, with and without connection_id', () => {
    assert.deepEqual(parseClientMessage(JSON.stringify(auth), 'handshake.auth'), auth);
    const withId = { ...auth, connection_id: 'grant-42' };
    assert.deepEqual(parseClientMessage(JSON.stringify(withId), 'handshake.auth'), withId);
    for (const endpoint of ['http://10.0.0.2:8080/a', 'https://p.example', 'ws://localhost:9/x']) {
      parseClientMessage(JSON.stringify({ ...auth, patient_endpoint: endpoint }), 'handshake.auth');
    }
  });

  const bad: Array<[string, unknown]> = [
    ['unknown field', { ...auth, extra: 1 }],
    ['__proto__ field', null], // built as text below
    ['missing key', { ...auth, patient_public_key: undefined }],
    ['key of 42 chars', { ...auth, patient_public_key: KEY.slice(1) }],
    ['key of 44 chars', { ...auth, patient_public_key: `${KEY}A` }],
    ['key with padding', { ...auth, patient_public_key: `${KEY.slice(0, 42)}=` }],
    ['key in standard base64', { ...auth, patient_public_key: `+/${KEY.slice(2)}` }],
    ['signature of 85 chars', { ...auth, consent_token_signature: SIG.slice(1) }],
    ['signature non-canonical tail', { ...auth, consent_token_signature: `${SIG.slice(0, 85)}B` }],
    ['empty agent id', { ...auth, patient_agent_id: '' }],
    ['agent id with a space', { ...auth, patient_agent_id: 'a b' }],
    ['agent id with a newline', { ...auth, patient_agent_id: 'a\nb' }],
    ['agent id too long', { ...auth, patient_agent_id: 'a'.repeat(257) }],
    ['agent id a number', { ...auth, patient_agent_id: 123 }],
    ['endpoint ftp', { ...auth, patient_endpoint: 'ftp://x.example/a' }],
    ['endpoint no scheme', { ...auth, patient_endpoint: 'patient.example' }],
    ['endpoint javascript', { ...auth, patient_endpoint: 'javascript:alert(1)' }],
    ['endpoint unparseable', { ...auth, patient_endpoint: 'https://exa mple' }],
    ['endpoint bad host', { ...auth, patient_endpoint: 'https://[::1' }],
    ['endpoint too long', { ...auth, patient_endpoint: `https://x.example/${'a'.repeat(2048)}` }],
    ['payload not base64url', { ...auth, consent_token_payload: 'abc$' }],
    ['payload empty', { ...auth, consent_token_payload: '' }],
    ['payload too long', { ...auth, consent_token_payload: 'A'.repeat(16 * 1024 + 4) }],
    ['connection_id empty', { ...auth, connection_id: '' }],
    ['connection_id too long', { ...auth, connection_id: 'c'.repeat(257) }],
    ['type wrong (out of order)', { ...response }],
    ['type missing', { ...auth, type: undefined }],
  ];
  for (const [name, value] of bad) {
    it(`rejects: ${name}`, () => {
      const text = value === null ? JSON.stringify(auth).replace('{', '{"__proto__":{"polluted":true},') : JSON.stringify(value);
      rejects(text, 'handshake.auth');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  }

  it('rejects text that is not a JSON object', () => {
    for (const text of ['', 'not json', '[]', 'null', '"handshake.auth"', '{"type":"handshake.auth"']) rejects(text, 'handshake.auth');
  });

  it('rejects deep nesting without blowing the stack', () => {
    const deep = `{"type":"handshake.auth","x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    rejects(deep, 'handshake.auth');
  });

  it('reports MESSAGE_TOO_LARGE over the byte limit, counting UTF-8 bytes', () => {
    assert.throws(() => parseClientMessage('x'.repeat(2000), 'handshake.auth', { maxMessageBytes: 1024 }), { code: 'MESSAGE_TOO_LARGE' });
    // 500 three-byte characters: 500 UTF-16 units, 1500 bytes
    assert.throws(() => parseClientMessage(`"${'€'.repeat(500)}"`, 'handshake.auth', { maxMessageBytes: 1024 }), {
      code: 'MESSAGE_TOO_LARGE',
    });
  });
});

describe('handshake.challenge_response', () => {
  it('parses without a profile', () => {
    assert.deepEqual(parseClientMessage(JSON.stringify(response), 'handshake.challenge_response'), response);
  });

  it('keeps allow-listed profile fields and drops unknown ones', () => {
    const text = JSON.stringify({
      ...response,
      patient_profile: {
        display_name: 'Test Patient',
        date_of_birth: '1980-02-29',
        preferred_language: 'en-US',
        ssn: '000-00-0000',
        diagnosis: { code: 'x' },
        nested: [[[[1]]]],
      },
    }).replace('"patient_profile":{', '"patient_profile":{"__proto__":{"polluted":true},');
    const parsed = parseClientMessage(text, 'handshake.challenge_response');
    assert.deepEqual(parsed.patient_profile, { display_name: 'Test Patient', date_of_birth: '1980-02-29', preferred_language: 'en-US' });
    assert.equal(Object.getPrototypeOf(parsed.patient_profile), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('an empty profile stays an empty profile', () => {
    const parsed = parseClientMessage(JSON.stringify({ ...response, patient_profile: {} }), 'handshake.challenge_response');
    assert.deepEqual(parsed.patient_profile, {});
  });

  const bad: Array<[string, unknown]> = [
    ['unknown top-level field', { ...response, extra: true }],
    ['signature of 87 chars', { ...response, signed_nonce: `${SIG}A` }],
    ['signature missing', { type: 'handshake.challenge_response' }],
    ['profile null', { ...response, patient_profile: null }],
    ['profile an array', { ...response, patient_profile: [] }],
    ['display_name too long', { ...response, patient_profile: { display_name: 'x'.repeat(201) } }],
    ['display_name empty', { ...response, patient_profile: { display_name: '' } }],
    ['display_name control character', { ...response, patient_profile: { display_name: 'a\u0007b' } }],
    ...['\u202E', '\u202A', '\u2066', '\u2069', '\u200E', '\u200F', '\u061C'].map((bidi): [string, unknown] => [
      `display_name with bidirectional control U+${bidi.charCodeAt(0).toString(16).toUpperCase()}`,
      { ...response, patient_profile: { display_name: `Mary ${bidi}nosnhoJ` } },
    ]),
    ['display_name a number', { ...response, patient_profile: { display_name: 5 } }],
    ['date_of_birth not a date', { ...response, patient_profile: { date_of_birth: '01/02/1980' } }],
    ['date_of_birth impossible', { ...response, patient_profile: { date_of_birth: '1981-02-29' } }],
    ['preferred_language malformed', { ...response, patient_profile: { preferred_language: 'english please' } }],
    ['type auth (out of order)', { ...auth }],
  ];
  for (const [name, value] of bad) {
    it(`rejects: ${name}`, () => rejects(JSON.stringify(value), 'handshake.challenge_response'));
  }
});

describe('server messages', () => {
  const complete = {
    type: 'handshake.complete',
    status: 'new',
    relationship_id: '0b9a3f8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
    provider_npi: '1679576722',
    provider_endpoint: 'https://provider.example/agent',
    consented_actions: ['office_visit'],
    attestation: { payload: 'eyJ2IjoxfQ', signature: SIG },
    neuron_public_key: KEY,
  };

  it('parses the three Neuron messages', () => {
    const challenge = { type: 'handshake.challenge', nonce: 'ab'.repeat(32), provider_npi: '1679576722', organization_npi: '1245319599' };
    assert.deepEqual(parseServerMessage(JSON.stringify(challenge)), challenge);
    assert.deepEqual(parseServerMessage(JSON.stringify(complete)), complete);
    const error = { type: 'handshake.error', code: 'CONSENT_FAILED', reason: 'CONSENT_EXPIRED', message: 'consent token has expired' };
    assert.deepEqual(parseServerMessage(JSON.stringify(error)), error);
  });

  it('rejects malformed Neuron messages', () => {
    for (const value of [
      { type: 'handshake.challenge', nonce: 'AB'.repeat(32), provider_npi: '1679576722', organization_npi: '1245319599' },
      { ...complete, status: 'maybe' },
      { ...complete, neuron_public_key: 'x' },
      { type: 'handshake.error', code: 'lowercase', message: '' },
      { type: 'handshake.other' },
    ]) {
      assert.throws(() => parseServerMessage(JSON.stringify(value)), { code: 'INVALID_MESSAGE' });
    }
  });

  it('encodes an error frame from a ProtocolError', () => {
    const frame = encodeErrorFrame(
      new ProtocolError('CONSENT_FAILED', { reason: 'CONSENT_EXPIRED', message: 'consent token has expired' }),
    );
    assert.equal(
      frame,
      '{"type":"handshake.error","code":"CONSENT_FAILED","reason":"CONSENT_EXPIRED","message":"consent token has expired"}',
    );
    assert.deepEqual(JSON.parse(encodeErrorFrame(new ProtocolError('MESSAGE_TOO_LARGE'))), {
      type: 'handshake.error',
      code: 'MESSAGE_TOO_LARGE',
      message: 'The message is larger than allowed',
    });
    // The server's own errors have the same three fields.
    assert.deepEqual(JSON.parse(encodeErrorFrame({ code: 'AUTH_TIMEOUT', message: 'No handshake message arrived in time' })), {
      type: 'handshake.error',
      code: 'AUTH_TIMEOUT',
      message: 'No handshake message arrived in time',
    });
    parseServerMessage(frame);
  });
});
