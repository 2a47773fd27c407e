/**
 * Where the Neuron may send requests: the outbound policy for provider notices and webhooks.
 * Pure (no I/O): it classifies IP addresses and decides, for a URL when it is accepted and for
 * every resolved address when a delivery connects (./client.ts), whether the target is allowed.
 *
 * - Never allowed, whatever the settings: unspecified (0.0.0.0/8, ::), link-local (169.254.0.0/16,
 *   which holds the cloud metadata address 169.254.169.254, and fe80::/10), multicast (224.0.0.0/4,
 *   ff00::/8), reserved (240.0.0.0/4) and broadcast (255.255.255.255).
 * - Loopback (127.0.0.0/8, ::1) only with `outbound.allow_loopback`; private ranges (10/8,
 *   172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10) only with `outbound.allow_private`.
 * - Plain http: `outbound.plain_http` (`never`, `private`: only to loopback and private
 *   addresses, `always`).
 * - `outbound.allow` names hosts, addresses and CIDR ranges allowed whatever their class and
 *   scheme (never the always-refused ones above).
 * - IPv6 addresses that carry an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96,
 *   NAT64 64:ff9b::/96, local-use NAT64 64:ff9b:1::/48, 6to4 2002::/16) are judged by that IPv4
 *   address: ::ffff:127.0.0.1 is loopback, 2002:a00:1:: is private. Where the layout is ambiguous
 *   (64:ff9b:1::/48 may hold a translator prefix of /48, /56, /64 or /96), every reading the
 *   address allows is judged and the strictest verdict wins.
 */
import type { NeuronConfig } from '../config/schema.ts';

export type OutboundSettings = NeuronConfig['outbound'];

export type AddressClass = 'unspecified' | 'loopback' | 'link_local' | 'multicast' | 'reserved' | 'broadcast' | 'private' | 'public';

/** Classes no setting allows: no receiver legitimately lives there. */
export const ALWAYS_REFUSED: ReadonlySet<AddressClass> = new Set(['unspecified', 'link_local', 'multicast', 'reserved', 'broadcast']);

const CLASS_NAME: Record<AddressClass, string> = {
  unspecified: 'an unspecified ("this host") address',
  loopback: 'a loopback address',
  link_local: 'a link-local address (this range holds cloud metadata services)',
  multicast: 'a multicast address',
  reserved: 'a reserved address',
  broadcast: 'the broadcast address',
  private: 'a private-network address',
  public: 'a public address',
};

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export interface IpAddress {
  version: 4 | 6;
  bytes: Uint8Array;
}

interface Cidr {
  address: IpAddress;
  prefix: number;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i += 1) {
    const part = parts[i] ?? '';
    // Decimal only, no leading zeros: "010" means octal to some parsers and decimal to others.
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes[i] = value;
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (part: string): number[] | null => {
    if (part === '') return [];
    const pieces = part.split(':');
    const groups: number[] = [];
    for (let i = 0; i < pieces.length; i += 1) {
      const piece = pieces[i] ?? '';
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (v4 === null) return null;
        groups.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
      groups.push(parseInt(piece, 16));
    }
    return groups;
  };
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  if (head === null || tail === null) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/**
 * Parses an IPv4 address (dotted decimal) or an IPv6 address (optionally in brackets, with a
 * zone id after `%`, which is ignored). Null for anything else, host names included.
 */
export function parseIpAddress(text: string): IpAddress | null {
  let value = text;
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
  if (value.includes(':')) {
    const zone = value.indexOf('%');
    if (zone >= 0) value = value.slice(0, zone);
    const bytes = parseIpv6(value);
    return bytes === null ? null : { version: 6, bytes };
  }
  const bytes = parseIpv4(value);
  return bytes === null ? null : { version: 4, bytes };
}

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return prefix.every((byte, i) => bytes[i] === byte);
}

/**
 * The IPv4 address an IPv6 address carries, when it is one of the forms that reach an IPv4
 * host: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated), the NAT64
 * well-known prefix (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::/48 carries a.b.c.d). Any other
 * address is returned unchanged. The local-use NAT64 prefix, whose layout is ambiguous, is read
 * here in its /96 form (64:ff9b:1::a.b.c.d); embeddedIpv4Readings gives every reading.
 */
export function embeddedIpv4(address: IpAddress): IpAddress {
  return embeddedIpv4Readings(address)[0]!;
}

/** The bytes at these positions as an IPv4 address. */
function ipv4At(b: Uint8Array, positions: readonly number[]): IpAddress {
  return { version: 4, bytes: Uint8Array.from(positions, (i) => b[i] ?? 0) };
}

/**
 * Every IPv4 address an IPv6 address may carry (RFC 6052, RFC 8215, RFC 3056), or the address
 * itself when it carries none. Only the local-use NAT64 prefix 64:ff9b:1::/48 has more than one
 * reading: its translator may use a /48, /56, /64 or /96 prefix inside it, which put the IPv4
 * address in different bytes (RFC 6052 section 2.2; byte 8, bits 64-71, is always zero in the
 * shorter forms, and so is the suffix after the IPv4 address). Each layout consistent with the
 * bytes is a reading; the /96 one is always possible and comes first.
 */
export function embeddedIpv4Readings(address: IpAddress): IpAddress[] {
  if (address.version === 4) return [address];
  const b = address.bytes;
  const zeros = (from: number, to: number): boolean => b.slice(from, to).every((x) => x === 0);
  const mapped = zeros(0, 10) && b[10] === 0xff && b[11] === 0xff;
  // ::/96 except :: and ::1 themselves (unspecified and loopback in their own right).
  const compatible = zeros(0, 12) && !(zeros(12, 15) && (b[15] === 0 || b[15] === 1));
  const nat64 = startsWith(b, [0x00, 0x64, 0xff, 0x9b]) && zeros(4, 12);
  if (mapped || compatible || nat64) return [ipv4At(b, [12, 13, 14, 15])];
  // RFC 3056: 2002:V4ADDR::/48, the IPv4 address in bits 16-47.
  if (startsWith(b, [0x20, 0x02])) return [ipv4At(b, [2, 3, 4, 5])];
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01])) {
    const readings = [ipv4At(b, [12, 13, 14, 15])];
    if (b[8] === 0) {
      if (zeros(13, 16)) readings.push(ipv4At(b, [9, 10, 11, 12])); // translator prefix /64
      if (zeros(12, 16)) readings.push(ipv4At(b, [7, 9, 10, 11])); // /56
      if (zeros(11, 16)) readings.push(ipv4At(b, [6, 7, 9, 10])); // /48
    }
    // A /96 reading in 0.0.0.0/8 is no destination a translator serves: when the bytes also fit a
    // shorter layout, that is the one meant (otherwise every /48-form address would read 0.0.0.0).
    if (readings.length > 1 && readings[0]!.bytes[0] === 0) readings.shift();
    return readings;
  }
  return [address];
}

function inRange(bytes: Uint8Array, base: ArrayLike<number>, prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit += 8) {
    const take = Math.min(8, prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[bit / 8] ?? 0) & mask) !== ((base[bit / 8] ?? 0) & mask)) return false;
  }
  return true;
}

/** Strictest first: when an address has several readings, the strictest class is its class. */
const STRICTNESS: readonly AddressClass[] = [
  'unspecified',
  'link_local',
  'multicast',
  'reserved',
  'broadcast',
  'loopback',
  'private',
  'public',
];

/** The class of an address; IPv6 forms that carry an IPv4 address are classed by it. */
export function classifyAddress(input: IpAddress): AddressClass {
  const classes = embeddedIpv4Readings(input).map(classifyOne);
  return STRICTNESS.find((kind) => classes.includes(kind)) ?? 'public';
}

function classifyOne(address: IpAddress): AddressClass {
  const b = address.bytes;
  if (address.version === 4) {
    if (inRange(b, [0], 8)) return 'unspecified';
    if (inRange(b, [127], 8)) return 'loopback';
    if (inRange(b, [169, 254], 16)) return 'link_local';
    if (inRange(b, [224], 4)) return 'multicast';
    if (inRange(b, [255, 255, 255, 255], 32)) return 'broadcast';
    if (inRange(b, [240], 4)) return 'reserved';
    if (inRange(b, [10], 8) || inRange(b, [172, 16], 12) || inRange(b, [192, 168], 16) || inRange(b, [100, 64], 10)) return 'private';
    return 'public';
  }
  if (b.every((x) => x === 0)) return 'unspecified';
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return 'loopback';
  if (inRange(b, [0xfe, 0x80], 10)) return 'link_local';
  if (inRange(b, [0xff], 8)) return 'multicast';
  if (inRange(b, [0xfc], 7) || inRange(b, [0xfe, 0xc0], 10)) return 'private';
  return 'public';
}

function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const address = parseIpAddress(slash < 0 ? text : text.slice(0, slash));
  if (address === null) return null;
  const max = address.version === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  return prefix <= max ? { address, prefix } : null;
}

/** RFC 1123 host name (letters, digits, hyphens, dots), as an allow-list entry. */
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Problems with the `outbound` settings (for the config loader); empty when they are fine. */
export function outboundSettingsProblems(settings: OutboundSettings): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  settings.allow.forEach((entry, index) => {
    // Anything that looks like an address or a range must parse as one (no "10.0.0.300", no "10.1/8").
    const addressLike = entry.includes('/') || entry.includes(':') || /^[\d.]+$/.test(entry);
    if (parseCidr(entry) === null && (addressLike || !HOST_NAME.test(entry))) {
      problems.push({ path: `outbound.allow.${index}`, message: `not a host name, IP address or CIDR range: ${entry}` });
    }
  });
  return problems;
}

/** Names RFC 6761 reserves for the local host: they resolve to loopback whatever DNS says. */
function isLocalhostName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/** A URL's host as an address or name: IPv6 without its brackets. */
export function urlHost(url: URL): string {
  const host = url.hostname;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export class OutboundPolicy {
  readonly #settings: OutboundSettings;
  readonly #ranges: Cidr[] = [];
  readonly #hosts = new Set<string>();

  constructor(settings: OutboundSettings) {
    const problems = outboundSettingsProblems(settings);
    if (problems.length > 0) throw new Error(`invalid outbound settings: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
    this.#settings = settings;
    for (const entry of settings.allow) {
      const range = parseCidr(entry);
      if (range === null) {
        this.#hosts.add(entry.toLowerCase().replace(/\.$/, ''));
        continue;
      }
      // A range written as IPv4-mapped IPv6 (::ffff:10.0.0.0/104) is the IPv4 range it carries,
      // since addresses are compared in that form too.
      const v4 = embeddedIpv4(range.address);
      if (range.address.version === 6 && v4.version === 4 && range.prefix >= 96)
        this.#ranges.push({ address: v4, prefix: range.prefix - 96 });
      else this.#ranges.push(range);
    }
  }

  #allowListed(address: IpAddress, hostname: string): boolean {
    if (this.#hosts.has(hostname.toLowerCase().replace(/\.$/, ''))) return true;
    // Every reading must be allowed, or an ambiguous address could borrow another's permission.
    return embeddedIpv4Readings(address).every((effective) =>
      this.#ranges.some(
        (range) => range.address.version === effective.version && inRange(effective.bytes, range.address.bytes, range.prefix),
      ),
    );
  }

  /**
   * Why a connection to `address` (reached through the URL host `hostname`) for a request of
   * `protocol` is refused, as a phrase to follow the address ("is a loopback address, …"), or
   * null when it is allowed.
   */
  addressRefusal(address: string, hostname: string, protocol: string): string | null {
    const parsed = parseIpAddress(address);
    if (parsed === null) return 'is not an IP address';
    const kind = classifyAddress(parsed);
    if (ALWAYS_REFUSED.has(kind)) return `is ${CLASS_NAME[kind]}, never a delivery target`;
    if (protocol !== 'http:' && protocol !== 'https:')
      return `cannot be reached over ${protocol.replace(/:$/, '')}: deliveries use http(s)`;
    if (this.#allowListed(parsed, hostname)) return null;
    if (kind === 'loopback' && !this.#settings.allow_loopback)
      return `is ${CLASS_NAME.loopback}, refused while outbound.allow_loopback is false`;
    if (kind === 'private' && !this.#settings.allow_private)
      return `is ${CLASS_NAME.private}, refused while outbound.allow_private is false`;
    if (protocol === 'http:') {
      if (this.#settings.plain_http === 'never')
        return 'would be reached over plain http, refused while outbound.plain_http is "never": use https';
      if (this.#settings.plain_http === 'private' && kind === 'public')
        return `is ${CLASS_NAME.public}, reached over plain http only when outbound.plain_http is "always": use https`;
    }
    return null;
  }

  /**
   * What the policy can say about a URL before any DNS lookup (when it is accepted): a literal
   * IP address or a localhost name it refuses, a scheme it refuses. Null when nothing is wrong
   * yet; a host name is checked again against every address it resolves to at delivery.
   */
  urlProblem(text: string): string | null {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return null; // the shape checks report unparseable URLs
    }
    const host = urlHost(url);
    const literal = parseIpAddress(host);
    if (literal !== null) {
      const refusal = this.addressRefusal(host, host, url.protocol);
      return refusal === null ? null : `names ${host}, which ${refusal}`;
    }
    if (isLocalhostName(host)) {
      const refusal = this.addressRefusal('127.0.0.1', host, url.protocol);
      return refusal === null ? null : `names ${host}, which ${refusal}`;
    }
    if (this.#hosts.has(host.toLowerCase().replace(/\.$/, ''))) return null;
    if (url.protocol === 'http:' && this.#settings.plain_http === 'never')
      return 'uses plain http, refused while outbound.plain_http is "never": use https';
    return null;
  }
}
