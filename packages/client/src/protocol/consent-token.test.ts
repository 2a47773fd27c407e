import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { ProtocolError } from './errors.ts';
import { createConsentToken, verifyConsentToken, type ConsentDialect } from './consent-token.ts';

const PATIENT = 'patient-agent-123';
const NPI = '1679576722';
const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const HOUR = 3_600_000;
const keys = generateKeyPairSync('ed25519');

/** Signs arbitrary claims JSON text as a token (for malformed and hand-written cases). */
function rawToken(json: string, privateKey: KeyObject = keys.privateKey): { payloadB64: string; signatureB64: string } {
  const bytes = Buffer.from(json, 'utf8');
  return { payloadB64: bytes.toString('base64url'), signatureB64: sign(null, bytes, privateKey).toString('base64url') };
}

function check(
  token: { payloadB64: string; signatureB64: string },
  overrides: { patientAgentId?: string; now?: number; clockSkewMs?: number; key?: KeyObject } = {},
) {
  return verifyConsentToken({
    ...token,
    patientPublicKey: overrides.key ?? keys.publicKey,
    patientAgentId: overrides.patientAgentId ?? PATIENT,
    now: overrides.now ?? NOW,
    ...(overrides.clockSkewMs === undefined ? {} : { clockSkewMs: overrides.clockSkewMs }),
  });
}

function fails(reason: string, fn: () => unknown): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.code, 'CONSENT_FAILED');
    assert.equal(error.reason, reason);
    return true;
  });
}

function token(dialect: ConsentDialect, issuedAt: Date | null, expiresAt: Date, patientAgentId = PATIENT) {
  const t = createConsentToken(
    { patientAgentId, providerNpi: NPI, consentedActions: ['office_visit'], issuedAt, expiresAt },
    keys.privateKey,
    dialect,
  );
  return { payloadB64: t.payload, signatureB64: t.signature };
}

describe('consent token', () => {
  for (const dialect of ['A', 'B'] as const) {
    it(`dialect ${dialect}: a fresh token verifies`, () => {
      const claims = check(token(dialect, new Date(NOW - HOUR), new Date(NOW + HOUR)));
      assert.equal(claims.dialect, dialect);
      assert.deepEqual(claims.consentedActions, ['office_visit']);
      assert.equal(claims.providerNpi, NPI);
    });

    it(`dialect ${dialect}: issue time is optional`, () => {
      const claims = check(token(dialect, null, new Date(NOW + HOUR)));
      assert.equal(claims.issuedAt, null);
    });

    it(`dialect ${dialect}: expiry and issue time respect the 60 s skew`, () => {
      // expired 59 s ago: still inside the skew
      check(token(dialect, null, new Date(NOW - 59_000)));
      fails('CONSENT_EXPIRED', () => check(token(dialect, null, new Date(NOW - 61_000))));
      fails('CONSENT_EXPIRED', () => check(token(dialect, null, new Date(NOW - 60_000)))); // boundary: now >= exp + skew
      // issued 59 s in the future: inside the skew
      check(token(dialect, new Date(NOW + 59_000), new Date(NOW + HOUR)));
      fails('NOT_YET_VALID', () => check(token(dialect, new Date(NOW + 61_000), new Date(NOW + HOUR))));
      // a configured skew of zero
      fails('CONSENT_EXPIRED', () => check(token(dialect, null, new Date(NOW - 1_000)), { clockSkewMs: 0 }));
    });
  }

  it('INVALID_SIGNATURE: signed by another key', () => {
    const other = generateKeyPairSync('ed25519');
    fails('INVALID_SIGNATURE', () => check(token('A', null, new Date(NOW + HOUR)), { key: other.publicKey }));
  });

  it('INVALID_SIGNATURE: the signature spelled with S + L (non-canonical), refused before OpenSSL sees it', () => {
    const t = token('A', null, new Date(NOW + HOUR));
    const signature = Buffer.from(t.signatureB64, 'base64url');
    const order = (1n << 252n) + 27742317777372353535851937790883648493n;
    let s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString('hex')}`) + order;
    for (let i = 0; i < 32; i++, s >>= 8n) signature[32 + i] = Number(s & 0xffn);
    fails('INVALID_SIGNATURE', () => check({ ...t, signatureB64: signature.toString('base64url') }));
  });

  it('INVALID_SIGNATURE: one payload byte changed', () => {
    const t = token('A', null, new Date(NOW + HOUR));
    const bytes = Buffer.from(t.payloadB64, 'base64url');
    bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 1;
    fails('INVALID_SIGNATURE', () => check({ ...t, payloadB64: bytes.toString('base64url') }));
  });

  it('INVALID_SIGNATURE: the signature is checked over the received bytes, not a re-serialisation', () => {
    // Same claims, different whitespace: a verifier that re-serialised would accept this.
    const signed = rawToken('{"patient_agent_id":"patient-agent-123","provider_npi":"1679576722","consented_actions":[],"exp":1893456000}');
    const spaced = Buffer.from(
      '{ "patient_agent_id": "patient-agent-123", "provider_npi": "1679576722", "consented_actions": [], "exp": 1893456000 }',
    );
    check(signed);
    fails('INVALID_SIGNATURE', () => check({ payloadB64: spaced.toString('base64url'), signatureB64: signed.signatureB64 }));
  });

  it('INVALID_SIGNATURE: a malformed signature encoding', () => {
    const t = token('A', null, new Date(NOW + HOUR));
    fails('INVALID_SIGNATURE', () => check({ ...t, signatureB64: t.signatureB64.slice(1) }));
    fails('INVALID_SIGNATURE', () => check({ ...t, signatureB64: `${t.signatureB64.slice(0, 85)}=` }));
  });

  it('MALFORMED_TOKEN: payload that is not base64url, UTF-8 or a JSON object', () => {
    const t = token('A', null, new Date(NOW + HOUR));
    fails('MALFORMED_TOKEN', () => check({ ...t, payloadB64: `${t.payloadB64}=` }));
    fails('MALFORMED_TOKEN', () => check({ ...t, payloadB64: '' }));
    fails('MALFORMED_TOKEN', () => check({ ...t, payloadB64: 'A'.repeat(16 * 1024 + 4) }));
    const invalidUtf8 = Buffer.from([0x7b, 0xff, 0x7d]);
    fails('MALFORMED_TOKEN', () =>
      check({
        payloadB64: invalidUtf8.toString('base64url'),
        signatureB64: sign(null, invalidUtf8, keys.privateKey).toString('base64url'),
      }),
    );
    for (const json of ['not json', '[]', 'null', '"text"', '42']) fails('MALFORMED_TOKEN', () => check(rawToken(json)));
  });

  it('MALFORMED_TOKEN: a key repeated in any object, however spelled (JSON.parse would keep the last)', () => {
    const exp = Math.floor((NOW + HOUR) / 1000);
    const claims = `"patient_agent_id":"${PATIENT}","provider_npi":"${NPI}","consented_actions":["office_visit"],"exp":${exp}`;
    // Sound as written: accepted.
    assert.equal(check(rawToken(`{${claims}}`)).patientAgentId, PATIENT);
    const repeated = [
      `{${claims},"exp":${exp + 3_600}}`,
      `{"provider_npi":"1245319599",${claims}}`,
      `{${claims},"\u0065xp":${exp}}`,
      `{${claims},"extra":{"a":1,"b":{"c":[{"d":1,"d":2}]}}}`,
      `{${claims},"extra":[{"k":1},{"k":2,"k":3}]}`,
    ];
    for (const json of repeated) fails('MALFORMED_TOKEN', () => check(rawToken(json)));
    // The same key in different objects, or a key's text as a value, is no repeat.
    assert.equal(check(rawToken(`{${claims},"extra":[{"k":1},{"k":2}],"other":{"exp":"exp"}}`)).patientAgentId, PATIENT);
  });

  const base = { patient_agent_id: PATIENT, provider_npi: NPI };
  const exp = Math.floor((NOW + HOUR) / 1000);
  const expIso = new Date(NOW + HOUR).toISOString();
  const malformed: Array<[string, Record<string, unknown>]> = [
    ['mixed dialects (exp + scope)', { ...base, scope: ['x'], exp }],
    ['mixed dialects (iat with expires_at)', { ...base, scope: ['x'], iat: exp - 10, expires_at: expIso }],
    ['mixed dialects (both actions lists)', { ...base, consented_actions: ['x'], scope: ['x'], exp }],
    ['no expiry at all', { ...base }],
    ['dialect A without exp', { ...base, consented_actions: ['x'], iat: exp - 10 }],
    ['dialect B without expires_at', { ...base, scope: ['x'], issued_at: expIso }],
    ['dialect A without actions', { ...base, exp }],
    ['dialect B without scope', { ...base, expires_at: expIso }],
    ['missing patient_agent_id', { provider_npi: NPI, consented_actions: [], exp }],
    ['missing provider_npi', { patient_agent_id: PATIENT, consented_actions: [], exp }],
    ['provider_npi of 9 digits', { ...base, provider_npi: '167957672', consented_actions: [], exp }],
    ['provider_npi as a number', { ...base, provider_npi: 1679576722, consented_actions: [], exp }],
    ['exp as a string', { ...base, consented_actions: [], exp: String(exp) }],
    ['exp negative', { ...base, consented_actions: [], exp: -1 }],
    ['exp beyond year 9999', { ...base, consented_actions: [], exp: 1e15 }],
    ['expires_at not ISO', { ...base, scope: [], expires_at: 'tomorrow' }],
    ['expires_at not UTC', { ...base, scope: [], expires_at: '2026-03-01T13:00:00+01:00' }],
    ['expires_at impossible date', { ...base, scope: [], expires_at: '2026-02-30T00:00:00Z' }],
    ['expires_at as Unix seconds (dialect B)', { ...base, scope: [], expires_at: exp }],
    ['exp as ISO (dialect A)', { ...base, consented_actions: [], exp: expIso }],
    ['actions not an array', { ...base, consented_actions: 'office_visit', exp }],
    ['action not a string', { ...base, consented_actions: [1], exp }],
    ['action empty', { ...base, consented_actions: [''], exp }],
    ['action too long', { ...base, consented_actions: ['x'.repeat(129)], exp }],
    ['action with a control character', { ...base, consented_actions: ['a\nb'], exp }],
    ['too many actions', { ...base, consented_actions: Array.from({ length: 65 }, (_, i) => `a${i}`), exp }],
    ['expires before issued', { ...base, consented_actions: [], iat: exp + 1, exp }],
    ['patient_agent_id too long', { ...base, patient_agent_id: 'p'.repeat(257), consented_actions: [], exp }],
  ];
  for (const [name, claims] of malformed) {
    it(`MALFORMED_TOKEN: ${name}`, () => fails('MALFORMED_TOKEN', () => check(rawToken(JSON.stringify(claims)))));
  }

  it('accepts unknown extra claims and keeps the exact claims JSON', () => {
    const json = JSON.stringify({ ...base, consented_actions: ['a'], exp, jti: 'abc', __proto__x: 1 });
    const claims = check(rawToken(json));
    assert.equal(claims.claimsJson, json);
  });

  it('a __proto__ claim does not pollute anything', () => {
    const json = `{"__proto__":{"polluted":true},"patient_agent_id":"${PATIENT}","provider_npi":"${NPI}","consented_actions":[],"exp":${exp}}`;
    check(rawToken(json));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('PATIENT_MISMATCH: the claims name another patient agent', () => {
    fails('PATIENT_MISMATCH', () => check(token('A', null, new Date(NOW + HOUR), 'someone-else')));
    fails('PATIENT_MISMATCH', () => check(token('B', null, new Date(NOW + HOUR)), { patientAgentId: 'someone-else' }));
  });

  it('checks in order: signature before claims, claims before patient, patient before time', () => {
    const other = generateKeyPairSync('ed25519');
    // malformed AND wrongly signed -> signature wins
    fails('INVALID_SIGNATURE', () => check(rawToken('not json', other.privateKey)));
    // malformed claims for another patient -> malformed wins
    fails('MALFORMED_TOKEN', () =>
      check(rawToken(JSON.stringify({ patient_agent_id: 'x', provider_npi: NPI, exp })), { patientAgentId: 'y' }),
    );
    // expired AND for another patient -> patient wins
    fails('PATIENT_MISMATCH', () => check(token('A', null, new Date(NOW - HOUR), 'someone-else')));
  });

  it('public messages never carry claim values or keys', () => {
    const t = token('A', null, new Date(NOW - HOUR), 'secret-agent-id');
    try {
      check(t, { patientAgentId: 'other' });
      assert.fail('should throw');
    } catch (error) {
      assert.ok(error instanceof ProtocolError);
      assert.ok(!error.message.includes('secret-agent-id'));
      assert.ok(!error.message.includes(NPI));
    }
  });

  it('createConsentToken refuses claims it would not accept', () => {
    assert.throws(
      () =>
        createConsentToken({ patientAgentId: PATIENT, providerNpi: '12', consentedActions: [], expiresAt: new Date(NOW) }, keys.privateKey),
      TypeError,
    );
  });
});
