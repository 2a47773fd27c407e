/**
 * Pure helpers for local discovery: the DNS-SD names and TXT record we publish, and the reading
 * of what other Neurons publish. No I/O here; advertisement.ts and browser.ts do the networking.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { HANDSHAKE_PATH } from 'neuron-careagent-client/protocol';
import type { DiscoveredNeuron } from './types.ts';

/**
 * The DNS-SD service name, published as `_careagent-neuron._tcp.local`: the name patient CareAgents
 * browse for, so it is the network's contract. Change it and no CareAgent finds a Neuron.
 *
 * It is 16 characters, one more than RFC 6763 section 7.2 (with RFC 6335 section 5.1) allows a
 * service name. Our responder and browser (bonjour-service over multicast-dns) do not enforce that
 * limit; some strict implementations do (docs/discovery.md).
 */
/** Default listening time of one browse (`browseNeurons`); also the CLI's default (`neuron discover --timeout 3s`). */
export const DEFAULT_BROWSE_TIMEOUT_MS = 3_000;
/** Upper bound for one browse: a minute is far beyond any answer delay on a LAN (RFC 6762 answers within 500 ms). */
export const MAX_BROWSE_TIMEOUT_MS = 60_000;

export const NEURON_SERVICE_TYPE = 'careagent-neuron';
export const NEURON_SERVICE_PROTOCOL = 'tcp';
/** The full type as DNS-SD writes it, for logs and docs. */
export const NEURON_SERVICE_TYPE_LABEL = `_${NEURON_SERVICE_TYPE}._${NEURON_SERVICE_PROTOCOL}`;

/** Version of the discovery/handshake protocol this Neuron speaks (`ver` TXT key). */
export const DISCOVERY_PROTOCOL_VERSION = '1';

/** An instance name is one DNS label: at most 63 bytes (RFC 1035 section 2.3.4, RFC 6763 section 4.1.1). */
const DNS_LABEL_MAX_BYTES = 63;
/**
 * We keep 7 bytes of the label free because on a name conflict the advertiser appends a number,
 * like ` (2)`; 7 bytes fit ` (9999)`, more renames than any network will need.
 */
export const MAX_INSTANCE_NAME_BYTES = DNS_LABEL_MAX_BYTES - 7;
/** Host labels get the same headroom: on a conflict the advertiser appends `-2`, `-3`, ... */
export const MAX_HOSTNAME_LABEL_CHARS = DNS_LABEL_MAX_BYTES - 7;
/** Each TXT string (`key=value`) is at most 255 bytes: it is prefixed by a one-byte length (RFC 6763 section 6.1). */
export const MAX_TXT_ENTRY_BYTES = 255;
/** Fallback instance name when the configured one is empty after cleaning. */
export const DEFAULT_INSTANCE_NAME = 'CareAgent Neuron';

// C0/C1 control characters, and the Unicode bidirectional overrides that can make a name display
// differently from what it is (the "Trojan Source" trick). Neither belongs in a name.
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(value: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const character of value) {
    const size = Buffer.byteLength(character, 'utf8');
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += character.length;
  }
  return value.slice(0, end);
}

function cleanText(value: string): string {
  return value.normalize('NFC').replace(UNSAFE_CHARACTERS, ' ').replace(/\s+/g, ' ').trim();
}

/**
 * The instance name we ask the responder for: no control characters, no dots (legal in DNS-SD but
 * mishandled by many browsers, including bonjour-service), one DNS label long.
 */
export function sanitizeInstanceName(requested: string): string {
  const cleaned = cleanText(requested.replaceAll('.', ' '));
  const truncated = truncateUtf8(cleaned, MAX_INSTANCE_NAME_BYTES).trim();
  return truncated.length > 0 ? truncated : DEFAULT_INSTANCE_NAME;
}

/**
 * A host label derived from the instance name: ASCII letters, digits and hyphens only, so it is a
 * valid host name everywhere (`St. Mary's Clinic` -> `st-marys-clinic`).
 */
export function deriveHostname(instanceName: string): string {
  const ascii = instanceName
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // drop the accents NFKD split off
    .toLowerCase()
    .replace(/['\u2019]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const label = ascii.slice(0, MAX_HOSTNAME_LABEL_CHARS).replace(/-+$/g, '');
  return label.length > 0 ? label : 'neuron';
}

/**
 * The highest number a rename appends. ` (9999)` and `-9999` fit the 7 bytes kept free above; a
 * network where 9,998 devices already use the name is not one we can advertise on.
 */
export const MAX_RENAME_NUMBER = 9_999;

/** The n-th candidate instance name: `Name`, then `Name (2)`, `Name (3)`, ... */
export function numberedInstanceName(name: string, n: number): string {
  return n <= 1 ? name : `${name} (${n})`;
}

/** The n-th candidate host label: `clinic`, then `clinic-2`, `clinic-3`, ... */
export function numberedHostLabel(label: string, n: number): string {
  return n <= 1 ? label : `${label}-${n}`;
}

export interface TxtInput {
  organizationNpi: string;
  organizationName: string;
  tls: boolean;
}

/** The TXT record we publish. Key order is the order on the wire. */
export function buildTxtRecord(input: TxtInput): Record<string, string> {
  return {
    npi: input.organizationNpi,
    name: truncateUtf8(cleanText(input.organizationName), MAX_TXT_ENTRY_BYTES - 'name='.length).trim(),
    ver: DISCOVERY_PROTOCOL_VERSION,
    path: HANDSHAKE_PATH,
    tls: input.tls ? '1' : '0',
  };
}

/**
 * Reads TXT strings as RFC 6763 section 6 says: split at the first `=`, keys are case-insensitive,
 * a key without `=` is present with an empty value, strings starting with `=` are ignored, and
 * only the first occurrence of a key counts.
 */
export function parseTxtStrings(entries: readonly Uint8Array[]): Record<string, string> {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const result: Record<string, string> = {};
  for (const entry of entries) {
    if (entry.length === 0) continue;
    const text = decoder.decode(entry);
    const separator = text.indexOf('=');
    if (separator === 0) continue;
    const key = (separator === -1 ? text : text.slice(0, separator)).toLowerCase();
    if (Object.hasOwn(result, key)) continue;
    result[key] = separator === -1 ? '' : text.slice(separator + 1);
  }
  return result;
}

/** Same shape from an already decoded key/value object (used when raw TXT strings are missing). */
export function normalizeTxtObject(txt: Record<string, unknown>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(txt)) {
    const lower = key.toLowerCase();
    if (lower.length === 0 || Object.hasOwn(result, lower)) continue;
    result[lower] = value === undefined || value === null || value === true ? '' : String(value);
  }
  return result;
}

const SERVICE_SUFFIX = `._${NEURON_SERVICE_TYPE}._${NEURON_SERVICE_PROTOCOL}.local`;

/** The instance label of a service FQDN, with DNS presentation escapes (`\.`, `\\`) undone. */
export function instanceNameFromFqdn(fqdn: string): string | null {
  const withoutDot = fqdn.endsWith('.') ? fqdn.slice(0, -1) : fqdn;
  if (!withoutDot.toLowerCase().endsWith(SERVICE_SUFFIX)) return null;
  const label = withoutDot.slice(0, -SERVICE_SUFFIX.length);
  if (label.length === 0) return null;
  return label.replace(/\\(.)/g, '$1');
}

/** Addresses with IPv4 first (keeping the order within each family), unknown strings dropped. */
export function orderAddresses(addresses: readonly string[]): string[] {
  const unique = [...new Set(addresses)];
  return [...unique.filter((a) => isIPv4(a)), ...unique.filter((a) => isIPv6(a))];
}

// A path we are willing to put in a URL: absolute, printable ASCII without spaces, at most 200
// characters (ours is 13; anything near the 250 bytes a TXT string allows is not a handshake path).
const SAFE_PATH = /^\/[\x21-\x7e]{0,200}$/;
// A host name we are willing to put in a URL: no whitespace and none of the URL delimiters.
const SAFE_HOST = /^[^\s/\\@?#:[\]%]+$/;

export interface HandshakeUrlInput {
  host: string;
  port: number;
  addresses: readonly string[];
  txt: Readonly<Record<string, string>>;
}

/**
 * `ws(s)://host:port/path` for a discovered Neuron: wss when `tls=1`; the first IPv4 address, else
 * the host name; the advertised path when it is a plain absolute path, else `/ws/handshake`.
 * Null when no valid URL can be formed (bad port or host).
 */
export function deriveHandshakeUrl(input: HandshakeUrlInput): string | null {
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65_535) return null; // TCP port range
  const scheme = input.txt['tls'] === '1' ? 'wss' : 'ws';
  const ipv4 = input.addresses.find((a) => isIPv4(a));
  let host: string;
  if (ipv4 !== undefined) host = ipv4;
  else if (isIPv6(input.host)) host = `[${input.host}]`;
  else host = input.host.replace(/\.$/, '');
  // A host name from the network must not carry URL syntax (userinfo, path, port, spaces).
  if (!host.startsWith('[') && !SAFE_HOST.test(host)) return null;
  const advertisedPath = input.txt['path'];
  const candidates = advertisedPath !== undefined && SAFE_PATH.test(advertisedPath) ? [advertisedPath, HANDSHAKE_PATH] : [HANDSHAKE_PATH];
  for (const path of candidates) {
    let url: URL;
    try {
      url = new URL(`${scheme}://${host}:${input.port}${path}`);
    } catch {
      continue;
    }
    // Use the path only if the URL parser kept it as it is (no query, fragment or re-encoding).
    if (url.pathname === path && url.search === '' && url.hash === '') return url.href;
  }
  return null;
}

/** What the browser hands us for one service; every field may be missing or odd. */
export interface RawService {
  fqdn?: unknown;
  name?: unknown;
  host?: unknown;
  port?: unknown;
  addresses?: unknown;
  rawTxt?: unknown;
  txt?: unknown;
}

/** Turns a browsed service into a DiscoveredNeuron, or null when it lacks what a client needs. */
export function toDiscoveredNeuron(raw: RawService): DiscoveredNeuron | null {
  if (typeof raw.fqdn !== 'string' || typeof raw.host !== 'string' || typeof raw.port !== 'number') return null;
  const name = instanceNameFromFqdn(raw.fqdn) ?? (typeof raw.name === 'string' ? raw.name : null);
  if (name === null) return null;
  const addresses = Array.isArray(raw.addresses) ? orderAddresses(raw.addresses.filter((a): a is string => typeof a === 'string')) : [];
  let txt: Record<string, string> = {};
  if (Array.isArray(raw.rawTxt) && raw.rawTxt.every((e) => e instanceof Uint8Array)) {
    txt = parseTxtStrings(raw.rawTxt as Uint8Array[]);
  } else if (raw.rawTxt instanceof Uint8Array) {
    txt = parseTxtStrings([raw.rawTxt]);
  } else if (typeof raw.txt === 'object' && raw.txt !== null) {
    txt = normalizeTxtObject(raw.txt as Record<string, unknown>);
  }
  const host = raw.host.replace(/\.$/, '');
  const handshakeUrl = deriveHandshakeUrl({ host, port: raw.port, addresses, txt });
  if (handshakeUrl === null) return null;
  return {
    name,
    fqdn: raw.fqdn.replace(/\.$/, ''),
    host,
    port: raw.port,
    addresses,
    txt,
    npi: txt['npi'] ?? null,
    organizationName: txt['name'] ?? null,
    protocolVersion: txt['ver'] ?? null,
    tls: txt['tls'] === '1',
    handshakeUrl,
  };
}

/** Makes network-supplied text safe to print on a terminal (no escape sequences, no bidi tricks). */
export function printable(value: string): string {
  return value.replace(UNSAFE_CHARACTERS, '\ufffd');
}

/** Human-readable listing for `neuron discover` without `--json`. */
export function formatDiscoveredNeurons(neurons: readonly DiscoveredNeuron[]): string {
  if (neurons.length === 0) return 'No Neurons found on the local network.';
  const lines = [`Found ${neurons.length} Neuron${neurons.length === 1 ? '' : 's'} on the local network:`];
  for (const neuron of neurons) {
    lines.push('');
    lines.push(`  ${printable(neuron.name)}`);
    if (neuron.organizationName !== null) lines.push(`    organization  ${printable(neuron.organizationName)}`);
    if (neuron.npi !== null) lines.push(`    npi           ${printable(neuron.npi)}`);
    lines.push(`    handshake     ${printable(neuron.handshakeUrl)}`);
    lines.push(`    host          ${printable(neuron.host)}:${neuron.port}`);
    if (neuron.addresses.length > 0) lines.push(`    addresses     ${neuron.addresses.map(printable).join(', ')}`);
    const version = neuron.protocolVersion ?? 'unknown';
    const note = version === DISCOVERY_PROTOCOL_VERSION ? '' : ' (not the version this Neuron speaks)';
    lines.push(`    protocol      ${printable(version)}${note}`);
  }
  return lines.join('\n');
}
