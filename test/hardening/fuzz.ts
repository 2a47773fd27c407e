/**
 * A generator of hostile handshake traffic and a runner that drives it through real connections.
 * Shared by test/hardening/fuzz.test.ts (a few hundred cases) and `npm run stress` (10 000+).
 *
 * Reproducible: every choice comes from a seeded PRNG, including the patients' keys (derived
 * from seeds), so `generateCases(seed, n)` always yields the same cases. What cannot be pinned
 * (the Neuron's challenge nonce, the current time inside tokens) does not change any verdict.
 *
 * Each case is one connection. It either sends its frames right after the upgrade (`auth` stage)
 * or first completes a valid `handshake.auth`, receives the challenge, and then sends its frames
 * (`response` stage). No case ever sends a valid challenge response, so no case can complete.
 *
 * The verdict for every case:
 * - exactly one `handshake.error` frame with a catalogue code from the expected set, then a close
 *   with that code's close code (spec section 5); or, for frames the WebSocket layer itself
 *   refuses, a close with the expected RFC 6455 code and no error frame (1009 too large, 1002
 *   protocol error, 1007 invalid UTF-8, 1008 too many fragments);
 * - no other frame but the challenge (response stage), and the error message never echoes input.
 * The callers add the global checks: the process stays up and nothing but one
 * `handshake.failed` audit entry per case is written.
 */
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { createConsentToken, patientKeysFromSeed, type PatientKeys } from 'neuron-careagent-client';
import { ERROR_CATALOGUE, type ErrorCode } from '../../src/foundation/errors/index.ts';
import { encodeBase64url, isAcceptablePublicKeyBytes, isBase64url, isEd25519Point, signChallenge } from 'neuron-careagent-client/protocol';

// ---------------------------------------------------------------- seeded PRNG

/** A small 32-bit generator (a Weyl sequence through a 32-bit mixing function); not for secrets. */
export class Prng {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4_294_967_296;
  }
  /** Integer in [min, max] inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
  /** A derived generator, so one family's draws do not shift another's. */
  fork(): Prng {
    return new Prng(this.u32());
  }
}

/** A fresh seed for a run that was not given one (printed so the run can be repeated). */
export function randomSeed(): number {
  return randomBytes(4).readUInt32BE(0);
}

/** FUZZ_SEED from the environment (decimal or 0x hex), else `fallback`. */
export function seedFromEnv(fallback: number): number {
  const text = process.env['FUZZ_SEED'];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text.trim());
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff)
    throw new Error(`FUZZ_SEED must be a 32-bit unsigned integer, not ${text}`);
  return value;
}

// ---------------------------------------------------------------- cases

/** A frame to send: JSON-less text, a binary frame, or bytes written straight onto the socket (raw transport). */
export type Outgoing = { text: string } | { binary: Buffer } | { raw: Buffer };

export type Expectation =
  /** One handshake.error frame with one of these codes (and reasons), then its catalogue close code. */
  | { error: readonly ErrorCode[]; reasons?: readonly string[]; mayChallenge?: boolean }
  /** A close with one of these codes and no error frame (the WebSocket layer refused the frame). */
  | { close: readonly number[] };

export interface FuzzCase {
  index: number;
  family: string;
  /** `ws`: through the ws client; `raw`: a hand-made upgrade and hand-made frames on a TCP socket. */
  transport: 'ws' | 'raw';
  stage: 'auth' | 'response';
  /** The patient whose valid auth opens a response-stage case. */
  patient: number;
  /** What to send; response-stage cases get the challenge nonce (64 hex). */
  frames: (nonceHex: string | null) => Outgoing[];
  expect: Expectation;
}

/** Closes the WebSocket layer uses without an error frame, and the failure each one is audited as. */
export const WS_LAYER_CLOSES: Readonly<Record<number, ErrorCode>> = {
  1002: 'INVALID_MESSAGE', // protocol error (bad framing)
  1007: 'INVALID_MESSAGE', // a text frame that is not UTF-8
  1008: 'INVALID_MESSAGE', // too many fragments (ws >= 8.23)
  1009: 'MESSAGE_TOO_LARGE',
};

/** Marker put into hostile strings: an error message must never contain it (no echo of input). */
export const MARKER = 'zqMARKqz';

export interface FuzzKitPatient {
  agentId: string;
  keys: PatientKeys;
  endpoint: string;
  /** The valid handshake.auth text for this patient. */
  auth: string;
  authObject: Record<string, unknown>;
}

/** Material the cases share: a few patients with valid tokens, the served provider, other keys. */
export interface FuzzKit {
  seed: number;
  providerNpi: string;
  patients: FuzzKitPatient[];
  /** A key nobody presents, to sign things with the wrong key. */
  strangerKey: KeyObject;
  maxMessageBytes: number;
}

const INVALID: readonly ErrorCode[] = ['INVALID_MESSAGE'];
const CONSENT: readonly ErrorCode[] = ['CONSENT_FAILED'];
const CHALLENGE: readonly ErrorCode[] = ['CHALLENGE_FAILED'];
const AUTH_FIELDS = [
  'type',
  'patient_agent_id',
  'patient_public_key',
  'patient_endpoint',
  'consent_token_payload',
  'consent_token_signature',
] as const;
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * `issuedAt` (default: now) dates the patients' valid tokens; two kits made from one seed with one
 * `issuedAt` hold identical tokens, wherever the clock's second falls between them.
 */
export function createKit(
  seed: number,
  options: { providerNpi: string; maxMessageBytes: number; patients?: number; issuedAt?: Date },
): FuzzKit {
  const issuedAt = options.issuedAt ?? new Date();
  const prng = new Prng(seed ^ 0x5eed_c0de);
  const patients: FuzzKitPatient[] = [];
  for (let i = 0; i < (options.patients ?? 6); i++) {
    const keys = patientKeysFromSeed(prng.bytes(32));
    const agentId = `fuzz-${seed.toString(16)}-${i}`;
    const endpoint = `wss://${agentId}.patients.example/agent`;
    const token = createConsentToken(
      { patientAgentId: agentId, providerNpi: options.providerNpi, consentedActions: ['office_visit'], issuedAt },
      keys,
    );
    const authObject = {
      type: 'handshake.auth',
      patient_agent_id: agentId,
      patient_public_key: keys.publicKeyB64,
      patient_endpoint: endpoint,
      consent_token_payload: token.payload,
      consent_token_signature: token.signature,
    };
    patients.push({ agentId, keys, endpoint, auth: JSON.stringify(authObject), authObject });
  }
  return {
    seed,
    providerNpi: options.providerNpi,
    patients,
    strangerKey: patientKeysFromSeed(prng.bytes(32)).privateKey,
    maxMessageBytes: options.maxMessageBytes,
  };
}

// ---- random values

const STRING_POOLS = [
  'abcdefghijklmnopqrstuvwxyz0123456789',
  ' \t\r\n"\\/{}[]:,',
  '\u0000\u0001\u001f\u007f\u0085',
  'éü€中文😀\u2028\u2029\ufeff',
  '\ud800\udfff', // lone surrogates (JSON.stringify escapes them)
  `${B64URL}=+/`,
];

function randomString(prng: Prng, maxLength: number): string {
  const length = prng.int(0, maxLength);
  let out = '';
  for (let i = 0; i < length; i++) {
    const pool = prng.pick(STRING_POOLS);
    out += pool[prng.int(0, pool.length - 1)];
  }
  return prng.chance(0.3) ? `${out}${MARKER}` : out;
}

function randomJson(prng: Prng, depth: number): unknown {
  const kind = prng.int(0, depth > 0 ? 7 : 4);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return prng.chance(0.5);
    case 2:
      return prng.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE, prng.int(-1e9, 1e9)]);
    case 3:
      return randomString(prng, 40);
    case 4:
      return prng.pick(['handshake.auth', 'handshake.challenge_response', '', 'HANDSHAKE.AUTH', MARKER]);
    case 5:
    case 6: {
      const object: Record<string, unknown> = {};
      const n = prng.int(0, 6);
      for (let i = 0; i < n; i++)
        object[prng.chance(0.5) ? prng.pick([...AUTH_FIELDS, '__proto__', 'constructor', '']) : randomString(prng, 12)] = randomJson(
          prng,
          depth - 1,
        );
      return object;
    }
    default:
      return Array.from({ length: prng.int(0, 5) }, () => randomJson(prng, depth - 1));
  }
}

/** A value of a JSON type other than string. */
function wrongTypeValue(prng: Prng): unknown {
  return prng.pick<unknown>([null, true, false, 0, -1, 3.14, [], {}, ['x'], { a: 1 }, [[[]]], 1e21]);
}

function b64urlOfLength(prng: Prng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += B64URL[prng.int(0, 63)];
  return out;
}

/** Nested arrays or objects `depth` deep, as JSON text. */
function deepNesting(prng: Prng, depth: number): string {
  if (prng.chance(0.5)) return `${'['.repeat(depth)}${']'.repeat(depth)}`;
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** 32 bytes whose encoding passes the cheap key checks but that are not a point on the curve. */
function offCurveKey(prng: Prng): string {
  for (;;) {
    const raw = prng.bytes(32);
    raw[31]! &= 0x7f;
    if (isAcceptablePublicKeyBytes(raw) && !isEd25519Point(raw)) return encodeBase64url(raw);
  }
}

/** Canonical encodings the key checks refuse: small-order points and a y coordinate >= p. */
const UNUSABLE_KEYS = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p: non-canonical
  'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = 2^255 - 1
].map((hex) => encodeBase64url(Buffer.from(hex, 'hex')));

/** The forged signature R = identity, S = 0 that small-order keys would accept for any message. */
const FORGED_SIGNATURE = encodeBase64url(Buffer.concat([Buffer.from('01', 'hex'), Buffer.alloc(63)]));

function signedToken(claimsBytes: Buffer, key: KeyObject): { payload: string; signature: string } {
  return { payload: encodeBase64url(claimsBytes), signature: encodeBase64url(sign(null, claimsBytes, key)) };
}

/** A spelling of `value` that is not canonical base64url at all (so the schema refuses it). */
function breakBase64url(prng: Prng, value: string): string {
  const at = prng.int(0, value.length - 1);
  let broken: string;
  switch (prng.int(0, 6)) {
    case 0:
      broken = `${value}=`;
      break;
    case 1:
      broken = `${value.slice(0, at)}${prng.pick(['+', '/', '=', ' ', '.', 'é', '\u0000'])}${value.slice(at + 1)}`;
      break;
    case 2:
      broken = value.slice(0, -1);
      break;
    case 3:
      broken = `${value}${B64URL[prng.int(0, 63)]}`;
      break;
    case 4: {
      // Set unused low bits in the last character: the same bytes under a lenient decoder.
      const last = B64URL.indexOf(value[value.length - 1]!);
      broken = `${value.slice(0, -1)}${B64URL[last | 1]}`;
      break;
    }
    case 5:
      broken = Buffer.from(value, 'base64url').toString('base64');
      break; // standard alphabet, padded
    default:
      broken = ` ${value}`;
  }
  // A cut or an extra character can leave a shorter or longer canonical spelling; pad it instead.
  return isBase64url(broken) ? `${broken}=` : broken;
}

type Builder = (prng: Prng, kit: FuzzKit, patient: FuzzKitPatient) => Omit<FuzzCase, 'index' | 'patient'>;

const authText = (object: Record<string, unknown>): Outgoing => ({ text: JSON.stringify(object) });
const once = (frames: Outgoing[]) => () => frames;

const AUTH_FAMILIES: Record<string, Builder> = {
  'text.not-json': (prng) => {
    let text = randomString(prng, 200);
    if (text.trim() === '' || /^[\s\d.eE+-]+$/.test(text)) text = `{${text}`;
    return { family: 'text.not-json', transport: 'ws', stage: 'auth', frames: once([{ text }]), expect: { error: INVALID } };
  },
  'text.empty-or-space': (prng) => ({
    family: 'text.empty-or-space',
    transport: 'ws',
    stage: 'auth',
    frames: once([{ text: prng.pick(['', ' ', '\n\t', '\u00a0']) }]),
    expect: { error: INVALID },
  }),
  'text.truncated': (prng, _kit, p) => ({
    family: 'text.truncated',
    transport: 'ws',
    stage: 'auth',
    frames: once([{ text: p.auth.slice(0, prng.int(0, p.auth.length - 1)) }]),
    expect: { error: INVALID },
  }),
  'text.trailing-garbage': (prng, _kit, p) => ({
    family: 'text.trailing-garbage',
    transport: 'ws',
    stage: 'auth',
    frames: once([{ text: `${p.auth}${prng.pick(['x', '}', ',', '{}', 'null', '//'])}${randomString(prng, 20)}` }]),
    expect: { error: INVALID },
  }),
  'json.not-object': (prng, _kit, p) => ({
    family: 'json.not-object',
    transport: 'ws',
    stage: 'auth',
    frames: once([
      { text: JSON.stringify(prng.pick<unknown>([null, true, 0, 'handshake.auth', [], [p.authObject], randomString(prng, 30)])) },
    ]),
    expect: { error: INVALID },
  }),
  'json.random-object': (prng) => {
    const object = randomJson(prng, 4);
    const value =
      typeof object === 'object' && object !== null && !Array.isArray(object) ? (object as Record<string, unknown>) : { value: object };
    if (prng.chance(0.5)) value['type'] = 'handshake.auth';
    return { family: 'json.random-object', transport: 'ws', stage: 'auth', frames: once([authText(value)]), expect: { error: INVALID } };
  },
  'json.duplicate-key': (prng, _kit, p) => {
    // JSON.parse keeps the last of duplicate keys: the later, broken value must win.
    const field = prng.pick(AUTH_FIELDS.filter((f) => f !== 'type'));
    const text = `${p.auth.slice(0, -1)},${JSON.stringify(field)}:${JSON.stringify(wrongTypeValue(prng))}}`;
    return { family: 'json.duplicate-key', transport: 'ws', stage: 'auth', frames: once([{ text }]), expect: { error: INVALID } };
  },
  'json.huge-number': (_prng, _kit, p) => ({
    family: 'json.huge-number',
    transport: 'ws',
    stage: 'auth',
    frames: once([{ text: `${p.auth.slice(0, -1)},"connection_id":1e999}` }]),
    expect: { error: INVALID },
  }),
  'auth.missing-field': (prng, _kit, p) => {
    const object = { ...p.authObject };
    const drop = AUTH_FIELDS.filter(() => prng.chance(0.4));
    if (drop.length === 0) drop.push(prng.pick(AUTH_FIELDS));
    for (const field of drop) delete object[field];
    return { family: 'auth.missing-field', transport: 'ws', stage: 'auth', frames: once([authText(object)]), expect: { error: INVALID } };
  },
  'auth.extra-field': (prng, _kit, p) => {
    const name = prng.pick([
      '__proto__',
      'constructor',
      'prototype',
      '',
      'patient_profile',
      'signed_nonce',
      'Type',
      randomString(prng, 16) || 'x',
    ]);
    // Built as text so that a __proto__ key really is on the wire.
    const text = `${p.auth.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(randomJson(prng, 2))}}`;
    return { family: 'auth.extra-field', transport: 'ws', stage: 'auth', frames: once([{ text }]), expect: { error: INVALID } };
  },
  'auth.wrong-type': (prng, _kit, p) => {
    const object = { ...p.authObject };
    object[prng.pick([...AUTH_FIELDS, 'connection_id'])] = wrongTypeValue(prng);
    return { family: 'auth.wrong-type', transport: 'ws', stage: 'auth', frames: once([authText(object)]), expect: { error: INVALID } };
  },
  'auth.huge-string': (prng, kit, p) => {
    const object = { ...p.authObject };
    const field = prng.pick(['patient_agent_id', 'patient_endpoint', 'consent_token_payload', 'connection_id', 'patient_public_key']);
    const room = kit.maxMessageBytes - p.auth.length - 64;
    const length = prng.int(Math.min(2_049, room), Math.max(2_049, room));
    object[field] =
      field === 'patient_endpoint'
        ? `https://${'a'.repeat(length)}.example/`
        : field === 'consent_token_payload'
          ? `${'A'.repeat(length - (length % 4))}`
          : `${MARKER}${'x'.repeat(length)}`;
    // A payload under 16 KiB would be valid base64url: keep it over the protocol bound.
    if (field === 'consent_token_payload' && (object[field] as string).length <= 16_384) object[field] = 'A'.repeat(16_388);
    const text = JSON.stringify(object);
    return {
      family: 'auth.huge-string',
      transport: 'ws',
      stage: 'auth',
      frames: once([{ text }]),
      expect: Buffer.byteLength(text) > kit.maxMessageBytes ? { close: [1009] } : { error: INVALID },
    };
  },
  oversize: (prng, kit, p) => {
    const extra = prng.int(1, 3 * kit.maxMessageBytes);
    const text = prng.chance(0.5)
      ? `${p.auth.slice(0, -1)},"pad":"${'€'.repeat(Math.ceil((kit.maxMessageBytes + extra) / 3))}"}`
      : `${p.auth.slice(0, -1)},"pad":"${'x'.repeat(kit.maxMessageBytes + extra)}"}`;
    return {
      family: 'oversize',
      transport: 'ws',
      stage: 'auth',
      frames: once(prng.chance(0.2) ? [{ binary: Buffer.from(text) }] : [{ text }]),
      expect: { close: [1009] },
    };
  },
  'auth.deep-nesting': (prng, kit, p) => {
    const depth = prng.int(100, Math.floor((kit.maxMessageBytes - p.auth.length - 100) / 6));
    const nested = deepNesting(prng, depth);
    const where = prng.int(0, 2);
    const text =
      where === 0
        ? nested
        : where === 1
          ? `${p.auth.slice(0, -1)},"x":${nested}}`
          : p.auth.replace(/"patient_agent_id":"[^"]*"/, `"patient_agent_id":${nested}`);
    return {
      family: 'auth.deep-nesting',
      transport: 'ws',
      stage: 'auth',
      frames: once([{ text }]),
      expect: Buffer.byteLength(text) > kit.maxMessageBytes ? { close: [1009] } : { error: INVALID },
    };
  },
  'auth.bad-base64url': (prng, _kit, p) => {
    const object = { ...p.authObject };
    const field = prng.pick(['patient_public_key', 'consent_token_signature', 'consent_token_payload'] as const);
    object[field] = breakBase64url(prng, object[field] as string);
    return { family: 'auth.bad-base64url', transport: 'ws', stage: 'auth', frames: once([authText(object)]), expect: { error: INVALID } };
  },
  'auth.key-length': (prng, _kit, p) => {
    const object = { ...p.authObject };
    object['patient_public_key'] = b64urlOfLength(prng, prng.pick([0, 22, 42, 44, 64, 86]));
    return { family: 'auth.key-length', transport: 'ws', stage: 'auth', frames: once([authText(object)]), expect: { error: INVALID } };
  },
  'auth.signature-length': (prng, _kit, p) => {
    const object = { ...p.authObject };
    object['consent_token_signature'] = b64urlOfLength(prng, prng.pick([0, 43, 84, 85, 87, 88, 128]));
    return {
      family: 'auth.signature-length',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: INVALID },
    };
  },
  'auth.key-off-curve': (prng, _kit, p) => {
    const object = { ...p.authObject, patient_public_key: offCurveKey(prng) };
    return {
      family: 'auth.key-off-curve',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: ['INVALID_SIGNATURE'] },
    };
  },
  'auth.key-unusable': (prng, _kit, p) => {
    const object: Record<string, unknown> = { ...p.authObject, patient_public_key: prng.pick(UNUSABLE_KEYS) };
    if (prng.chance(0.5)) object['consent_token_signature'] = FORGED_SIGNATURE;
    return {
      family: 'auth.key-unusable',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: ['INVALID_SIGNATURE'] },
    };
  },
  'auth.signature-over-other-bytes': (prng, _kit, p) => {
    const payload = Buffer.from(p.authObject['consent_token_payload'] as string, 'base64url');
    const other = prng.pick([
      Buffer.concat([payload, Buffer.from(' ')]),
      payload.subarray(1),
      Buffer.from(p.authObject['consent_token_payload'] as string), // the base64url text instead of its bytes
      Buffer.from(JSON.stringify(JSON.parse(payload.toString('utf8')), null, 1)), // re-serialised claims
      Buffer.alloc(0),
      prng.bytes(32),
    ]);
    const object = { ...p.authObject, consent_token_signature: encodeBase64url(sign(null, other, p.keys.privateKey)) };
    return {
      family: 'auth.signature-over-other-bytes',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: ['INVALID_SIGNATURE'] },
    };
  },
  'auth.signature-other-key': (prng, kit, p) => {
    const payload = Buffer.from(p.authObject['consent_token_payload'] as string, 'base64url');
    const other = prng.chance(0.5) ? kit.strangerKey : kit.patients[(kit.patients.indexOf(p) + 1) % kit.patients.length]!.keys.privateKey;
    const object = { ...p.authObject, consent_token_signature: encodeBase64url(sign(null, payload, other)) };
    return {
      family: 'auth.signature-other-key',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: ['INVALID_SIGNATURE'] },
    };
  },
  'auth.signature-random': (prng, _kit, p) => {
    const object = { ...p.authObject, consent_token_signature: encodeBase64url(prng.bytes(64)) };
    return {
      family: 'auth.signature-random',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: ['INVALID_SIGNATURE'] },
    };
  },
  'auth.claims-malformed': (prng, kit, p) => {
    const now = Math.floor(Date.now() / 1000);
    const base = { patient_agent_id: p.agentId, provider_npi: kit.providerNpi };
    const claims = prng.pick<unknown>([
      [base],
      'claims',
      null,
      { ...base, consented_actions: ['x'] }, // no expiry
      { ...base, consented_actions: ['x'], exp: now + 600, expires_at: new Date().toISOString() }, // mixed dialects
      { ...base, consented_actions: ['x'], exp: String(now + 600) },
      { ...base, consented_actions: ['x'], exp: -1 },
      { ...base, consented_actions: ['x'], exp: 1e20 },
      { ...base, consented_actions: 'x', exp: now + 600 },
      { ...base, consented_actions: [1], exp: now + 600 },
      { ...base, consented_actions: ['a\u0000b'], exp: now + 600 },
      { ...base, consented_actions: Array.from({ length: 65 }, (_, i) => `a${i}`), exp: now + 600 },
      { ...base, consented_actions: ['x'.repeat(129)], exp: now + 600 },
      { ...base, consented_actions: ['x'], iat: now + 900, exp: now + 600 }, // expires before issued
      { ...base, scope: ['x'], expires_at: '2026-02-30T00:00:00Z' },
      { ...base, scope: ['x'], expires_at: now + 600 },
      { patient_agent_id: p.agentId, provider_npi: '123', consented_actions: ['x'], exp: now + 600 },
      { provider_npi: kit.providerNpi, consented_actions: ['x'], exp: now + 600 },
      { patient_agent_id: `${MARKER} with space`, provider_npi: kit.providerNpi, consented_actions: ['x'], exp: now + 600 },
    ]);
    const bytes = prng.chance(0.1)
      ? Buffer.concat([Buffer.from([0xff, 0xfe]), prng.bytes(20)])
      : Buffer.from(JSON.stringify(claims), 'utf8');
    const token = signedToken(bytes, p.keys.privateKey);
    const object = { ...p.authObject, consent_token_payload: token.payload, consent_token_signature: token.signature };
    return {
      family: 'auth.claims-malformed',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: ['MALFORMED_TOKEN'] },
    };
  },
  'auth.claims-time': (prng, kit, p) => {
    const now = Date.now();
    const expired = prng.chance(0.5);
    const expiredAt = now - prng.int(3_600, 86_400) * 1000;
    const token = createConsentToken(
      expired
        ? {
            patientAgentId: p.agentId,
            providerNpi: kit.providerNpi,
            consentedActions: ['x'],
            issuedAt: new Date(expiredAt - 3_600_000),
            expiresAt: new Date(expiredAt),
          }
        : {
            patientAgentId: p.agentId,
            providerNpi: kit.providerNpi,
            consentedActions: ['x'],
            issuedAt: new Date(now + prng.int(3_600, 86_400) * 1000),
            expiresAt: new Date(now + 200_000_000),
          },
      p.keys,
      prng.chance(0.5) ? 'A' : 'B',
    );
    const object = { ...p.authObject, consent_token_payload: token.payload, consent_token_signature: token.signature };
    return {
      family: 'auth.claims-time',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: [expired ? 'CONSENT_EXPIRED' : 'NOT_YET_VALID'] },
    };
  },
  'auth.patient-mismatch': (prng, kit, p) => {
    const token = createConsentToken(
      { patientAgentId: `${p.agentId}-${prng.int(0, 999)}`, providerNpi: kit.providerNpi, consentedActions: ['x'] },
      p.keys,
    );
    const object = { ...p.authObject, consent_token_payload: token.payload, consent_token_signature: token.signature };
    return {
      family: 'auth.patient-mismatch',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: CONSENT, reasons: ['PATIENT_MISMATCH'] },
    };
  },
  'auth.unknown-provider': (prng, kit, p) => {
    let npi = kit.providerNpi;
    while (npi === kit.providerNpi) npi = String(prng.int(1_000_000_000, 9_999_999_999));
    const token = createConsentToken({ patientAgentId: p.agentId, providerNpi: npi, consentedActions: ['x'] }, p.keys);
    const object = { ...p.authObject, consent_token_payload: token.payload, consent_token_signature: token.signature };
    return {
      family: 'auth.unknown-provider',
      transport: 'ws',
      stage: 'auth',
      frames: once([authText(object)]),
      expect: { error: ['PROVIDER_NOT_FOUND'] },
    };
  },
  'auth.bad-endpoint': (prng, _kit, p) => {
    const object = { ...p.authObject };
    object['patient_endpoint'] = prng.pick([
      '',
      'ftp://x.example/',
      'http://',
      'wss://',
      'javascript:alert(1)',
      `https://${MARKER} x.example/`,
      'https://[::1',
      'wss://\u0000.example/',
      `https://${'a'.repeat(2_050)}.example/`,
      'HTTPS//x',
      'file:///etc/passwd',
    ]);
    return { family: 'auth.bad-endpoint', transport: 'ws', stage: 'auth', frames: once([authText(object)]), expect: { error: INVALID } };
  },
  'auth.bad-agent-id': (prng, _kit, p) => {
    const object = { ...p.authObject };
    object[prng.chance(0.8) ? 'patient_agent_id' : 'connection_id'] = prng.pick([
      '',
      ' ',
      `${MARKER} x`,
      `${MARKER}\u0000`,
      `${MARKER}é`,
      'x'.repeat(257),
      '\t',
      `${MARKER}\u2028`,
    ]);
    return { family: 'auth.bad-agent-id', transport: 'ws', stage: 'auth', frames: once([authText(object)]), expect: { error: INVALID } };
  },
  'type.wrong': (prng, _kit, p) => {
    const object = {
      ...p.authObject,
      type: prng.pick([
        'handshake.challenge',
        'handshake.complete',
        'handshake.error',
        'Handshake.Auth',
        'handshake.auth ',
        '',
        MARKER,
        'handshake.challenge_response',
      ]),
    };
    return { family: 'type.wrong', transport: 'ws', stage: 'auth', frames: once([authText(object)]), expect: { error: INVALID } };
  },
  'order.response-first': (prng, _kit, p) => ({
    family: 'order.response-first',
    transport: 'ws',
    stage: 'auth',
    frames: once([
      authText({
        type: 'handshake.challenge_response',
        signed_nonce: prng.chance(0.5) ? encodeBase64url(prng.bytes(64)) : signChallenge(prng.bytes(32), p.keys.privateKey),
      }),
    ]),
    expect: { error: INVALID },
  }),
  'order.two-messages': (prng, _kit, p) => {
    // A second frame before the challenge was answered: in `checking` it is out of order; if the
    // challenge went out first, it is read as the (wrong) response.
    const second = prng.pick<Outgoing>([
      { text: p.auth },
      { text: JSON.stringify({ type: 'handshake.challenge_response', signed_nonce: encodeBase64url(prng.bytes(64)) }) },
      { text: randomString(prng, 30) },
      { binary: prng.bytes(prng.int(0, 64)) },
    ]);
    return {
      family: 'order.two-messages',
      transport: 'ws',
      stage: 'auth',
      frames: once([{ text: p.auth }, second]),
      expect: { error: ['INVALID_MESSAGE', 'CHALLENGE_FAILED'], mayChallenge: true },
    };
  },
  binary: (prng, _kit, p) => ({
    family: 'binary',
    transport: 'ws',
    stage: 'auth',
    frames: once([{ binary: prng.chance(0.5) ? Buffer.from(p.auth) : prng.bytes(prng.int(0, 2_048)) }]),
    expect: { error: INVALID },
  }),
};

const RESPONSE_FAMILIES: Record<string, Builder> = {
  'response.sign-hex-text': (_prng, _kit, p) => ({
    family: 'response.sign-hex-text',
    transport: 'ws',
    stage: 'response',
    frames: (nonce) => [
      authText({
        type: 'handshake.challenge_response',
        signed_nonce: encodeBase64url(sign(null, Buffer.from(nonce!, 'utf8'), p.keys.privateKey)),
      }),
    ],
    expect: { error: CHALLENGE },
  }),
  'response.sign-other-bytes': (prng, _kit, p) => {
    const variant = prng.int(0, 3);
    return {
      family: 'response.sign-other-bytes',
      transport: 'ws',
      stage: 'response',
      frames: (nonce) => {
        const bytes = Buffer.from(nonce!, 'hex');
        const other =
          variant === 0
            ? prng.bytes(32)
            : variant === 1
              ? Buffer.concat([bytes, Buffer.from([0])])
              : variant === 2
                ? bytes.subarray(0, 31)
                : Buffer.from(bytes.map((b) => b ^ 0x01));
        return [authText({ type: 'handshake.challenge_response', signed_nonce: encodeBase64url(sign(null, other, p.keys.privateKey)) })];
      },
      expect: { error: CHALLENGE },
    };
  },
  'response.sign-other-key': (prng, kit, p) => {
    const key = prng.chance(0.5) ? kit.strangerKey : kit.patients[(kit.patients.indexOf(p) + 1) % kit.patients.length]!.keys.privateKey;
    return {
      family: 'response.sign-other-key',
      transport: 'ws',
      stage: 'response',
      frames: (nonce) => [authText({ type: 'handshake.challenge_response', signed_nonce: signChallenge(nonce!, key) })],
      expect: { error: CHALLENGE },
    };
  },
  'response.signature-garbage': (prng) => ({
    family: 'response.signature-garbage',
    transport: 'ws',
    stage: 'response',
    frames: once([
      authText({
        type: 'handshake.challenge_response',
        signed_nonce: prng.chance(0.5) ? encodeBase64url(prng.bytes(64)) : FORGED_SIGNATURE,
        ...(prng.chance(0.3) ? { patient_profile: { [randomString(prng, 8) || 'x']: MARKER } } : {}),
      }),
    ]),
    expect: { error: CHALLENGE },
  }),
  'response.schema': (prng, _kit, p) => {
    const variant = prng.int(0, 6);
    const extraName = prng.pick(['extra', '__proto__', 'nonce', 'patient_agent_id', '']);
    const extraValue = JSON.stringify(randomJson(prng, 2));
    const wrongType = wrongTypeValue(prng);
    const badProfile = prng.pick<unknown>([
      null,
      'x',
      [],
      7,
      [{ display_name: 'x' }],
      { display_name: `${MARKER}\u0000` },
      { display_name: '' },
      { display_name: 'x'.repeat(201) },
      { display_name: 5 },
      { date_of_birth: '2023-02-30' },
      { date_of_birth: '01/02/2003' },
      { date_of_birth: '2003-1-2' },
      { preferred_language: 'english language' },
      { preferred_language: 'a'.repeat(36) },
      { preferred_language: null },
    ]);
    const wrongName = prng.pick(['handshake.auth', 'handshake.challenge_response ', MARKER]);
    const fork = prng.fork();
    return {
      family: 'response.schema',
      transport: 'ws',
      stage: 'response',
      frames: (nonce) => {
        // Every variant carries the correct signature, so only the schema can refuse it.
        const good = signChallenge(nonce!, p.keys.privateKey);
        const message: Record<string, unknown> = { type: 'handshake.challenge_response', signed_nonce: good };
        switch (variant) {
          case 0:
            delete message['signed_nonce'];
            break;
          case 1:
            return [{ text: `${JSON.stringify(message).slice(0, -1)},${JSON.stringify(extraName)}:${extraValue}}` }];
          case 2:
            message['signed_nonce'] = wrongType;
            break;
          case 3:
            message['signed_nonce'] = breakBase64url(fork, good);
            break;
          case 4:
          case 5:
            message['patient_profile'] = badProfile;
            break;
          default:
            message['type'] = wrongName;
        }
        return [{ text: JSON.stringify(message) }];
      },
      expect: { error: INVALID },
    };
  },
  'response.auth-again': (_prng, _kit, p) => ({
    family: 'response.auth-again',
    transport: 'ws',
    stage: 'response',
    frames: once([{ text: p.auth }]),
    expect: { error: INVALID },
  }),
  'response.garbage': (prng) => ({
    family: 'response.garbage',
    transport: 'ws',
    stage: 'response',
    frames: once([
      prng.chance(0.3)
        ? { binary: prng.bytes(prng.int(0, 512)) }
        : { text: prng.chance(0.5) ? randomString(prng, 100) || '?' : JSON.stringify(randomJson(prng, 3)) },
    ]),
    expect: { error: INVALID },
  }),
  'response.oversize': (prng, kit) => ({
    family: 'response.oversize',
    transport: 'ws',
    stage: 'response',
    frames: once([
      {
        text: `{"type":"handshake.challenge_response","signed_nonce":"${'A'.repeat(kit.maxMessageBytes + prng.int(1, kit.maxMessageBytes))}"}`,
      },
    ]),
    expect: { close: [1009] },
  }),
  'response.two-responses': (prng, _kit, p) => ({
    family: 'response.two-responses',
    transport: 'ws',
    stage: 'response',
    frames: (nonce) => [
      authText({ type: 'handshake.challenge_response', signed_nonce: encodeBase64url(prng.bytes(64)) }),
      // The right answer arriving after a wrong one must not rescue the session.
      authText({ type: 'handshake.challenge_response', signed_nonce: signChallenge(nonce!, p.keys.privateKey) }),
    ],
    expect: { error: CHALLENGE },
  }),
};

// ---- hand-made frames (raw transport)

interface FrameOptions {
  fin?: boolean;
  rsv?: number;
  masked?: boolean;
  /** Declared payload length, when it should differ from the real one. */
  declaredLength?: number | bigint;
}

/** One client-to-server WebSocket frame (RFC 6455 section 5.2). */
export function wsFrame(opcode: number, payload: Buffer, options: FrameOptions = {}): Buffer {
  const fin = options.fin ?? true;
  const masked = options.masked ?? true;
  const length = options.declaredLength ?? payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (typeof length === 'bigint' || length > 0xffff) {
    head.push(maskBit | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(length));
    head.push(...big);
  } else if (length > 125) {
    head.push(maskBit | 126, (length >> 8) & 0xff, length & 0xff);
  } else {
    head.push(maskBit | length);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from(head), mask, body]);
}

const TEXT = 0x1;
const BINARY = 0x2;
const CONTINUATION = 0x0;
const CLOSE = 0x8;
const PING = 0x9;

const RAW_FAMILIES: Record<string, Builder> = {
  'frame.invalid-utf8': (prng) => ({
    family: 'frame.invalid-utf8',
    transport: 'raw',
    stage: 'auth',
    frames: once([
      {
        raw: wsFrame(
          TEXT,
          Buffer.concat([
            Buffer.from('{"type":"'),
            prng.pick([
              Buffer.from([0xc3, 0x28]),
              Buffer.from([0xed, 0xa0, 0x80]),
              Buffer.from([0xff]),
              Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
            ]),
            Buffer.from('"}'),
          ]),
        ),
      },
    ]),
    expect: { close: [1007] },
  }),
  'frame.unmasked': (_prng, _kit, p) => ({
    family: 'frame.unmasked',
    transport: 'raw',
    stage: 'auth',
    frames: once([{ raw: wsFrame(TEXT, Buffer.from(p.auth), { masked: false }) }]),
    expect: { close: [1002] },
  }),
  'frame.reserved-bits': (prng, _kit, p) => ({
    family: 'frame.reserved-bits',
    transport: 'raw',
    stage: 'auth',
    frames: once([{ raw: wsFrame(TEXT, Buffer.from(p.auth), { rsv: prng.int(1, 7) }) }]),
    expect: { close: [1002] },
  }),
  'frame.reserved-opcode': (prng) => ({
    family: 'frame.reserved-opcode',
    transport: 'raw',
    stage: 'auth',
    frames: once([{ raw: wsFrame(prng.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), prng.bytes(prng.int(0, 20))) }]),
    expect: { close: [1002] },
  }),
  'frame.orphan-continuation': (prng) => ({
    family: 'frame.orphan-continuation',
    transport: 'raw',
    stage: 'auth',
    frames: once([{ raw: wsFrame(CONTINUATION, prng.bytes(prng.int(0, 20))) }]),
    expect: { close: [1002] },
  }),
  'frame.bad-control': (prng) => {
    const variant = prng.int(0, 3);
    const raw =
      variant === 0
        ? wsFrame(PING, prng.bytes(prng.int(126, 300))) // control frames carry at most 125 bytes
        : variant === 1
          ? wsFrame(PING, prng.bytes(4), { fin: false }) // and are never fragmented
          : variant === 2
            ? wsFrame(CLOSE, Buffer.from([0x03])) // a close payload of one byte
            : wsFrame(CLOSE, Buffer.from([0x03, 0xed])); // close code 1005 is never sent on the wire
    return { family: 'frame.bad-control', transport: 'raw', stage: 'auth', frames: once([{ raw }]), expect: { close: [1002] } };
  },
  'frame.interleaved-data': (_prng, _kit, p) => ({
    family: 'frame.interleaved-data',
    transport: 'raw',
    stage: 'auth',
    frames: once([
      {
        raw: Buffer.concat([wsFrame(TEXT, Buffer.from(p.auth.slice(0, 10)), { fin: false }), wsFrame(TEXT, Buffer.from(p.auth.slice(10)))]),
      },
    ]),
    expect: { close: [1002] },
  }),
  'frame.declared-huge': (prng, kit) => ({
    family: 'frame.declared-huge',
    transport: 'raw',
    stage: 'auth',
    frames: once([
      {
        raw: wsFrame(prng.chance(0.5) ? TEXT : BINARY, prng.bytes(16), {
          declaredLength: prng.pick<number | bigint>([kit.maxMessageBytes + 1, 2 ** 32, 2n ** 62n, 2n ** 63n + 5n]),
        }),
      },
    ]),
    expect: { close: [1009] },
  }),
  'frame.fragmented-oversize': (prng, kit) => {
    const part = Math.ceil(kit.maxMessageBytes / 4) + 1;
    const frames = [wsFrame(TEXT, Buffer.alloc(part, 0x20), { fin: false })];
    for (let i = 0; i < 4; i++) frames.push(wsFrame(CONTINUATION, Buffer.alloc(part, 0x20), { fin: i === 3 && prng.chance(0.5) }));
    return {
      family: 'frame.fragmented-oversize',
      transport: 'raw',
      stage: 'auth',
      frames: once([{ raw: Buffer.concat(frames) }]),
      expect: { close: [1009] },
    };
  },
  'frame.fragment-flood': () => {
    // Empty fragments carry no payload, so only ws's fragment limit (8.23+) stops them.
    const empty = wsFrame(CONTINUATION, Buffer.alloc(0), { fin: false });
    const frames = [wsFrame(TEXT, Buffer.from('{'), { fin: false }), ...Array.from({ length: 16_400 }, () => empty)];
    return {
      family: 'frame.fragment-flood',
      transport: 'raw',
      stage: 'auth',
      frames: once([{ raw: Buffer.concat(frames) }]),
      expect: { close: [1008] },
    };
  },
  'frame.pings-then-garbage': (prng) => {
    const pings = Array.from({ length: prng.int(1, 50) }, () => wsFrame(PING, prng.bytes(prng.int(0, 125))));
    return {
      family: 'frame.pings-then-garbage',
      transport: 'raw',
      stage: 'auth',
      frames: once([{ raw: Buffer.concat([...pings, wsFrame(TEXT, Buffer.from(`not json ${MARKER}`))]) }]),
      expect: { error: INVALID },
    };
  },
};

/** Families and their weights (relative frequency). The raw fragment flood is heavy, so rare. */
const WEIGHTS: Array<[Record<string, Builder>, string, number]> = [
  ...Object.keys(AUTH_FAMILIES).map((name): [Record<string, Builder>, string, number] => [
    AUTH_FAMILIES,
    name,
    name === 'oversize' || name === 'auth.deep-nesting' || name === 'auth.huge-string' ? 2 : 3,
  ]),
  ...Object.keys(RESPONSE_FAMILIES).map((name): [Record<string, Builder>, string, number] => [
    RESPONSE_FAMILIES,
    name,
    name === 'response.oversize' ? 2 : 3,
  ]),
  ...Object.keys(RAW_FAMILIES).map((name): [Record<string, Builder>, string, number] => [
    RAW_FAMILIES,
    name,
    name === 'frame.fragment-flood' ? 0.2 : 1.5,
  ]),
];

export const FAMILY_NAMES: readonly string[] = WEIGHTS.map(([, name]) => name);

/**
 * `count` cases from `seed`. The first cases cover every family once (so even a small run touches
 * all of them); the rest are drawn by weight.
 */
export function generateCases(kit: FuzzKit, count: number): FuzzCase[] {
  const prng = new Prng(kit.seed);
  const total = WEIGHTS.reduce((sum, [, , w]) => sum + w, 0);
  const cases: FuzzCase[] = [];
  for (let index = 0; index < count; index++) {
    let chosen: [Record<string, Builder>, string, number];
    if (index < WEIGHTS.length) chosen = WEIGHTS[index]!;
    else {
      let roll = prng.next() * total;
      chosen = WEIGHTS[WEIGHTS.length - 1]!;
      for (const entry of WEIGHTS) {
        roll -= entry[2];
        if (roll < 0) {
          chosen = entry;
          break;
        }
      }
    }
    const patient = prng.int(0, kit.patients.length - 1);
    const built = chosen[0][chosen[1]]!(prng.fork(), kit, kit.patients[patient]!);
    cases.push({ ...built, index, patient });
  }
  return cases;
}

// ---------------------------------------------------------------- running

export interface Observation {
  /** Text frames received, parsed (unparseable ones kept as { type: '<unparsed>' }). */
  frames: Array<Record<string, unknown>>;
  closeCode: number | null;
  /** A refused upgrade, a connection failure or the case timeout. */
  failure: string | null;
}

/** Runs one case through the ws client. */
function runWsCase(url: string, kit: FuzzKit, c: FuzzCase, timeoutMs: number): Promise<Observation> {
  return new Promise((resolve) => {
    const frames: Array<Record<string, unknown>> = [];
    let done = false;
    let sentCaseFrames = false;
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 });
    const finish = (closeCode: number | null, failure: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ frames, closeCode, failure });
    };
    const timer = setTimeout(() => {
      ws.terminate();
      finish(null, `no close within ${timeoutMs} ms`);
    }, timeoutMs);
    const sendAll = (outgoing: Outgoing[]): void => {
      sentCaseFrames = true;
      for (const frame of outgoing) {
        if ('text' in frame) ws.send(frame.text);
        else if ('binary' in frame) ws.send(frame.binary, { binary: true });
      }
    };
    ws.on('open', () => {
      if (c.stage === 'auth') sendAll(c.frames(null));
      else ws.send(kit.patients[c.patient]!.auth);
    });
    ws.on('message', (data) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        frame = { type: '<unparsed>' };
      }
      frames.push(frame);
      if (c.stage === 'response' && !sentCaseFrames && frame['type'] === 'handshake.challenge' && typeof frame['nonce'] === 'string') {
        sendAll(c.frames(frame['nonce']));
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      finish(null, `upgrade refused: HTTP ${res.statusCode}`);
    });
    // Writes can fail once the Neuron has closed (a large frame still going out); 'close' follows.
    ws.on('error', (error) => {
      if (ws.readyState === WebSocket.CONNECTING) finish(null, `connection failed: ${error.message}`);
    });
    ws.on('close', (code) => finish(code, null));
  });
}

/** Server-to-client frames parsed off a raw socket (unmasked, RFC 6455 section 5.2). */
export class FrameReader {
  #buffer: Buffer = Buffer.alloc(0);
  feed(chunk: Buffer, onFrame: (opcode: number, payload: Buffer) => void): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (this.#buffer.length < 2) return;
      const opcode = this.#buffer[0]! & 0x0f;
      let length = this.#buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.#buffer.length < 4) return;
        length = this.#buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.#buffer.length < 10) return;
        length = Number(this.#buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.#buffer.length < offset + length) return;
      const payload = this.#buffer.subarray(offset, offset + length);
      this.#buffer = this.#buffer.subarray(offset + length);
      onFrame(opcode, payload);
    }
  }
}

/** Runs one case over a raw TCP socket: a hand-written upgrade, then the case's bytes as they are. */
function runRawCase(url: string, c: FuzzCase, timeoutMs: number): Promise<Observation> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const frames: Array<Record<string, unknown>> = [];
    let closeCode: number | null = null;
    let done = false;
    let upgraded = false;
    let head = Buffer.alloc(0);
    const reader = new FrameReader();
    const socket = connect(Number(target.port), target.hostname);
    const finish = (failure: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ frames, closeCode, failure });
    };
    const timer = setTimeout(() => finish(`no close within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => finish(closeCode === null ? 'socket closed without a close frame' : null));
    socket.on('connect', () => {
      socket.write(
        [
          `GET ${target.pathname} HTTP/1.1`,
          `Host: ${target.host}`,
          'Connection: Upgrade',
          'Upgrade: websocket',
          'Sec-WebSocket-Version: 13',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          '',
          '',
        ].join('\r\n'),
      );
    });
    const onFrame = (opcode: number, payload: Buffer): void => {
      if (opcode === TEXT) {
        try {
          frames.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
        } catch {
          frames.push({ type: '<unparsed>' });
        }
      } else if (opcode === CLOSE) {
        closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        finish(null);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) return reader.feed(chunk, onFrame);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.1 101 /.test(status)) return finish(`upgrade refused: ${status}`);
      upgraded = true;
      for (const frame of c.frames(null)) if ('raw' in frame) socket.write(frame.raw);
      const rest = head.subarray(end + 4);
      if (rest.length > 0) reader.feed(rest, onFrame);
    });
  });
}

export interface Verdict {
  ok: boolean;
  problems: string[];
  /** The failure the Neuron should have audited for this case. */
  auditedAs: ErrorCode | null;
}

/** Checks one observation against the case's expectation. */
export function judge(c: FuzzCase, seen: Observation): Verdict {
  const problems: string[] = [];
  if (seen.failure !== null) problems.push(seen.failure);
  const errors = seen.frames.filter((f) => f['type'] === 'handshake.error');
  const challenges = seen.frames.filter((f) => f['type'] === 'handshake.challenge');
  const others = seen.frames.filter((f) => f['type'] !== 'handshake.error' && f['type'] !== 'handshake.challenge');
  if (others.length > 0) problems.push(`unexpected frames: ${others.map((f) => String(f['type'])).join(', ')}`);
  const allowedChallenges = c.stage === 'response' ? 1 : 'error' in c.expect && c.expect.mayChallenge ? 1 : 0;
  if (c.stage === 'response' && challenges.length !== 1) problems.push('the valid auth got no challenge');
  if (challenges.length > allowedChallenges) problems.push(`${challenges.length} challenges`);
  let auditedAs: ErrorCode | null = null;

  if ('error' in c.expect) {
    if (errors.length !== 1) problems.push(`expected one handshake.error frame, got ${errors.length} (close ${seen.closeCode})`);
    const frame = errors[0];
    if (frame) {
      const code = frame['code'] as ErrorCode;
      auditedAs = code;
      if (!c.expect.error.includes(code)) problems.push(`code ${String(code)}, expected ${c.expect.error.join(' or ')}`);
      const definition = ERROR_CATALOGUE[code];
      if (definition === undefined) problems.push(`code ${String(code)} is not in the catalogue`);
      else if (seen.closeCode !== definition.closeCode)
        problems.push(`close ${seen.closeCode} after ${code}, expected ${definition.closeCode}`);
      if (c.expect.reasons && !c.expect.reasons.includes(String(frame['reason'])))
        problems.push(`reason ${String(frame['reason'])}, expected ${c.expect.reasons.join(' or ')}`);
      if (code !== 'CONSENT_FAILED' && frame['reason'] !== undefined) problems.push(`a reason on ${code}`);
      const message = frame['message'];
      if (typeof message !== 'string' || message.length === 0 || message.length > 256)
        problems.push('the error message is missing or too long');
      else if (message.includes(MARKER)) problems.push('the error message echoes the input');
    }
  } else {
    if (errors.length > 0) problems.push(`an error frame (${String(errors[0]!['code'])}) where the WebSocket layer should have closed`);
    if (seen.closeCode === null || !c.expect.close.includes(seen.closeCode))
      problems.push(`close ${seen.closeCode}, expected ${c.expect.close.join(' or ')}`);
    else auditedAs = WS_LAYER_CLOSES[seen.closeCode] ?? null;
  }
  return { ok: problems.length === 0, problems, auditedAs };
}

export interface CaseResult {
  case: FuzzCase;
  seen: Observation;
  verdict: Verdict;
}

export interface RunSummary {
  seed: number;
  cases: number;
  passed: number;
  failed: CaseResult[];
  /** Failures the Neuron should have audited, by code. */
  expectedAudit: Record<string, number>;
  byFamily: Record<string, { run: number; passed: number }>;
  seconds: number;
}

/**
 * Runs every case against `url` with `concurrency` connections at a time. Never throws for a
 * failing case: the summary lists them (with the seed, to reproduce).
 */
export async function runCases(
  url: string,
  kit: FuzzKit,
  cases: readonly FuzzCase[],
  options: { concurrency: number; caseTimeoutMs: number; onProgress?: (done: number) => void },
): Promise<RunSummary> {
  const began = performance.now();
  const failed: CaseResult[] = [];
  const expectedAudit: Record<string, number> = {};
  const byFamily: Record<string, { run: number; passed: number }> = {};
  let next = 0;
  let done = 0;
  let passed = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const c = cases[next++]!;
      const seen =
        c.transport === 'raw' ? await runRawCase(url, c, options.caseTimeoutMs) : await runWsCase(url, kit, c, options.caseTimeoutMs);
      const verdict = judge(c, seen);
      byFamily[c.family] ??= { run: 0, passed: 0 };
      const family = byFamily[c.family]!;
      family.run += 1;
      if (verdict.ok) {
        passed += 1;
        family.passed += 1;
      } else failed.push({ case: c, seen, verdict });
      if (verdict.auditedAs !== null) expectedAudit[verdict.auditedAs] = (expectedAudit[verdict.auditedAs] ?? 0) + 1;
      done += 1;
      options.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, cases.length) }, worker));
  return { seed: kit.seed, cases: cases.length, passed, failed, expectedAudit, byFamily, seconds: (performance.now() - began) / 1000 };
}

/** A readable account of the failed cases (at most `limit`), naming the seed to reproduce them. */
export function describeFailures(summary: RunSummary, limit = 10): string {
  const lines = [`${summary.failed.length} of ${summary.cases} fuzz cases failed; reproduce with FUZZ_SEED=${summary.seed}`];
  for (const result of summary.failed.slice(0, limit)) {
    lines.push(
      `  case #${result.case.index} ${result.case.family} (${result.case.stage}, ${result.case.transport}): ${result.verdict.problems.join('; ')}; frames ${JSON.stringify(result.seen.frames).slice(0, 300)}`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- database tallies

/** Rows that a failed handshake must never add. */
export interface RowCounts {
  relationships: number;
  patients: number;
  outbox: number;
  audit: number;
  auditFailed: number;
}

/** The SQL that counts them; the callers run it through kysely (in process) or better-sqlite3 (another process). */
export const ROW_COUNT_SQL = `SELECT
  (SELECT count(*) FROM relationships) AS relationships,
  (SELECT count(*) FROM patients) AS patients,
  (SELECT count(*) FROM outbox) AS outbox,
  (SELECT count(*) FROM audit_log) AS audit,
  (SELECT count(*) FROM audit_log WHERE event_type = 'handshake.failed') AS auditFailed`;

/** Audit entries after `afterSeq`, by event type and, for handshake.failed, by code. */
export const AUDIT_SINCE_SQL = `SELECT event_type AS type, details FROM audit_log WHERE seq > ? ORDER BY seq`;

export function tallyAudit(rows: ReadonlyArray<{ type: string; details: string }>): {
  types: Record<string, number>;
  failedCodes: Record<string, number>;
} {
  const types: Record<string, number> = {};
  const failedCodes: Record<string, number> = {};
  for (const row of rows) {
    types[row.type] = (types[row.type] ?? 0) + 1;
    if (row.type === 'handshake.failed') {
      const code = String((JSON.parse(row.details) as { code?: unknown }).code);
      failedCodes[code] = (failedCodes[code] ?? 0) + 1;
    }
  }
  return { types, failedCodes };
}
