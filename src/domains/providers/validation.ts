/**
 * What makes a roster entry valid, checked the same way for the REST API, the CLI, provider
 * self-registration and config seeds. The TypeBox schemas check shapes; these checks add what a
 * schema cannot say (Luhn check digit, URL schemes, a public key that is a real curve point),
 * and what the outbound policy says about a notification URL. Pure.
 */
import { isValidNpi, NPI_RULE, PROVIDER_TYPES } from '../../foundation/config/index.ts';
import {
  DISPLAY_TEXT,
  DISPLAY_TEXT_RULE,
  ED25519_PUBLIC_KEY_BYTES,
  decodeBase64url,
  isAcceptablePublicKeyBytes,
  isEd25519Point,
} from 'neuron-careagent-client/protocol';
import type { OutboundPolicy } from '../../foundation/outbound/index.ts';

export const PROVIDER_STATUSES = ['pending', 'active', 'suspended'] as const;
export type ProviderStatus = (typeof PROVIDER_STATUSES)[number];
export type ProviderType = (typeof PROVIDER_TYPES)[number];

export const CREDENTIAL_TYPES = ['license', 'certification', 'privilege'] as const;

/** A professional credential as the registry takes it (shared/spec/registry.md). */
export interface ProviderCredential {
  type: (typeof CREDENTIAL_TYPES)[number];
  issuer: string;
  identifier: string;
  status: string;
  issued_at?: string;
  expires_at?: string;
}

/** Limits on roster fields; the same numbers as the config seed schema (src/foundation/config/schema.ts). */
export const PROVIDER_LIMITS = {
  nameMaxChars: 200,
  specialtyMaxChars: 200,
  urlMaxChars: 2_048,
  providerTypesMax: 10,
  // Registry entries carry a handful of licenses and certifications; 20 leaves room.
  credentialsMax: 20,
  credentialFieldMaxChars: 200,
} as const;

export const ENDPOINT_SCHEMES = ['http:', 'https:', 'ws:', 'wss:'] as const;
export const NOTIFICATION_SCHEMES = ['http:', 'https:'] as const;

export interface FieldProblem {
  path: string;
  message: string;
}

/** The fields a roster entry can be given; `null` clears an optional one (on update). */
export interface ProviderFieldsInput {
  npi?: unknown;
  name?: unknown;
  provider_types?: unknown;
  specialty?: unknown;
  provider_endpoint?: unknown;
  provider_public_key?: unknown;
  notification_url?: unknown;
  credentials?: unknown;
}

function urlProblem(value: unknown, schemes: readonly string[]): string | null {
  if (typeof value !== 'string' || value.length === 0) return 'must be a URL';
  if (value.length > PROVIDER_LIMITS.urlMaxChars) return `must be at most ${PROVIDER_LIMITS.urlMaxChars} characters`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  const names = schemes.map((s) => s.slice(0, -1)).join(', ');
  if (!schemes.includes(url.protocol)) return `must use one of the schemes ${names}`;
  if (url.hostname === '') return 'must name a host';
  // A user name or password in the URL would be shown to every reader of the roster.
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password';
  return null;
}

/** Problem with a presented provider public key, or null when it is a usable Ed25519 key. */
export function publicKeyProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'must be a 43-character base64url Ed25519 public key';
  const raw = decodeBase64url(value, ED25519_PUBLIC_KEY_BYTES);
  if (raw === null) return 'must be a 43-character base64url Ed25519 public key';
  if (!isEd25519Point(raw) || !isAcceptablePublicKeyBytes(raw))
    return 'is not a usable Ed25519 public key (not a point of the curve, or a weak one)';
  return null;
}

function credentialsProblems(value: unknown, path: string): FieldProblem[] {
  if (!Array.isArray(value)) return [{ path, message: 'must be a list of credentials' }];
  if (value.length > PROVIDER_LIMITS.credentialsMax)
    return [{ path, message: `must hold at most ${PROVIDER_LIMITS.credentialsMax} credentials` }];
  const problems: FieldProblem[] = [];
  value.forEach((item: unknown, index) => {
    const at = `${path}.${index}`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      problems.push({ path: at, message: 'must be an object' });
      return;
    }
    const record = item as Record<string, unknown>;
    if (!CREDENTIAL_TYPES.includes(record['type'] as never))
      problems.push({ path: `${at}.type`, message: `must be one of ${CREDENTIAL_TYPES.join(', ')}` });
    for (const field of ['issuer', 'identifier', 'status']) {
      const text = record[field];
      if (typeof text !== 'string' || text.length === 0 || text.length > PROVIDER_LIMITS.credentialFieldMaxChars) {
        problems.push({ path: `${at}.${field}`, message: `must be text of 1 to ${PROVIDER_LIMITS.credentialFieldMaxChars} characters` });
      }
    }
    for (const field of ['issued_at', 'expires_at']) {
      const text = record[field];
      if (text !== undefined && (typeof text !== 'string' || Number.isNaN(Date.parse(text)) || text.length > 40)) {
        problems.push({ path: `${at}.${field}`, message: 'must be an ISO-8601 date' });
      }
    }
    for (const key of Object.keys(record)) {
      if (!['type', 'issuer', 'identifier', 'status', 'issued_at', 'expires_at'].includes(key))
        problems.push({ path: `${at}.${key}`, message: 'is not a credential field' });
    }
  });
  return problems;
}

/**
 * Every problem with the fields present in `input`. `required` names fields that must be
 * present; fields not in `required` may be absent, and the clearable ones may be null.
 * `pathPrefix` is prepended to paths (for example `body.` for REST answers).
 */
export function providerFieldProblems(
  input: ProviderFieldsInput,
  required: ReadonlyArray<keyof ProviderFieldsInput>,
  pathPrefix = '',
): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (field: string, message: string | null): void => {
    if (message !== null) problems.push({ path: `${pathPrefix}${field}`, message });
  };
  for (const field of required) {
    if (input[field] === undefined || input[field] === null) add(field, 'is required');
  }
  if (input.npi !== undefined && input.npi !== null) add('npi', isValidNpi(input.npi) ? null : `is not a valid NPI: ${NPI_RULE}`);
  if (input.name !== undefined && input.name !== null) {
    const name = input.name;
    if (typeof name !== 'string' || name.trim().length === 0 || name.length > PROVIDER_LIMITS.nameMaxChars)
      add('name', `must be text of 1 to ${PROVIDER_LIMITS.nameMaxChars} characters`);
    else if (!DISPLAY_TEXT.test(name)) add('name', DISPLAY_TEXT_RULE);
  }
  if (input.provider_types !== undefined && input.provider_types !== null) {
    const types = input.provider_types;
    if (!Array.isArray(types) || types.length === 0 || types.length > PROVIDER_LIMITS.providerTypesMax) {
      add('provider_types', `must list 1 to ${PROVIDER_LIMITS.providerTypesMax} provider types`);
    } else {
      types.forEach((type: unknown, index) => {
        if (!PROVIDER_TYPES.includes(type as ProviderType))
          add(`provider_types.${index}`, `is not a registry provider type (one of ${PROVIDER_TYPES.join(', ')})`);
      });
      if (new Set(types).size !== types.length) add('provider_types', 'lists a type twice');
    }
  }
  if (input.specialty !== undefined && input.specialty !== null) {
    add(
      'specialty',
      typeof input.specialty === 'string' && input.specialty.length <= PROVIDER_LIMITS.specialtyMaxChars
        ? null
        : `must be text of at most ${PROVIDER_LIMITS.specialtyMaxChars} characters`,
    );
  }
  if (input.provider_endpoint !== undefined && input.provider_endpoint !== null)
    add('provider_endpoint', urlProblem(input.provider_endpoint, ENDPOINT_SCHEMES));
  if (input.notification_url !== undefined && input.notification_url !== null)
    add('notification_url', urlProblem(input.notification_url, NOTIFICATION_SCHEMES));
  if (input.provider_public_key !== undefined && input.provider_public_key !== null)
    add('provider_public_key', publicKeyProblem(input.provider_public_key));
  if (input.credentials !== undefined && input.credentials !== null)
    problems.push(...credentialsProblems(input.credentials, `${pathPrefix}credentials`));
  return problems;
}

/**
 * What the outbound policy (src/foundation/outbound/policy.ts) refuses in a notification URL present in
 * `input`, before any DNS lookup: a literal address or localhost name of a refused class, or a
 * refused scheme. Checked after the shape (a URL with other problems is reported by those).
 * The provider_endpoint is not checked: the Neuron never connects to it, patients do.
 */
export function notificationUrlRefusals(input: ProviderFieldsInput, policy: OutboundPolicy, pathPrefix = ''): FieldProblem[] {
  const url = input.notification_url;
  if (typeof url !== 'string') return [];
  const refusal = policy.urlProblem(url);
  return refusal === null ? [] : [{ path: `${pathPrefix}notification_url`, message: `is refused by the outbound policy: it ${refusal}` }];
}
