/**
 * The DNS records a Neuron publishes over mDNS, and the two comparisons RFC 6762 asks of a
 * responder: is a record seen on the network one of ours (section 9, conflicts), and which of two
 * hosts probing for the same name at the same time goes first (section 8.2). Pure: no sockets
 * here; advertisement.ts and probe-round.ts send and receive.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A resource record as multicast-dns (dns-packet) encodes and decodes it. */
export interface MdnsRecord {
  name: string;
  type: string;
  class?: string;
  ttl?: number;
  /** The cache-flush bit (RFC 6762 section 10.2). */
  flush?: boolean;
  data?: unknown;
}

export interface MdnsQuestion {
  name: string;
  type: string;
}

export interface MdnsPacket {
  type?: string;
  questions?: MdnsQuestion[];
  answers?: MdnsRecord[];
  authorities?: MdnsRecord[];
  additionals?: MdnsRecord[];
}

/** The DNS-SD service type enumeration name (RFC 6763 section 9). */
export const SERVICE_ENUMERATION_NAME = '_services._dns-sd._udp.local';
/** RFC 6762 section 10: records that name a host (SRV, A, AAAA) live 120 seconds... */
export const HOST_RECORD_TTL_S = 120;
/** ...and the others (PTR, TXT) 75 minutes. */
export const OTHER_RECORD_TTL_S = 4_500;

export interface ServiceRecordsInput {
  /** `_careagent-neuron._tcp.local` */
  serviceType: string;
  /** `Clinic._careagent-neuron._tcp.local` */
  fqdn: string;
  /** `clinic.local` */
  host: string;
  port: number;
  /** TXT key/value pairs, in wire order. */
  txt: Readonly<Record<string, string>>;
  /** The addresses published for `host` (A and AAAA records). */
  addresses: readonly string[];
}

/**
 * Every record of one advertisement: the PTR that browsers ask for, SRV and TXT for the instance,
 * A/AAAA for the host, and the type enumeration PTR. The records that belong to us alone (SRV,
 * TXT, A, AAAA) carry the cache-flush bit, as RFC 6762 section 10.2 asks.
 */
export function serviceRecords(input: ServiceRecordsInput): MdnsRecord[] {
  const records: MdnsRecord[] = [
    { name: input.serviceType, type: 'PTR', ttl: OTHER_RECORD_TTL_S, data: input.fqdn },
    {
      name: input.fqdn,
      type: 'SRV',
      ttl: HOST_RECORD_TTL_S,
      flush: true,
      data: { priority: 0, weight: 0, port: input.port, target: input.host },
    },
    {
      name: input.fqdn,
      type: 'TXT',
      ttl: OTHER_RECORD_TTL_S,
      flush: true,
      data: Object.entries(input.txt).map(([key, value]) => Buffer.from(`${key}=${value}`, 'utf8')),
    },
  ];
  for (const address of input.addresses) {
    if (isIPv4(address)) records.push({ name: input.host, type: 'A', ttl: HOST_RECORD_TTL_S, flush: true, data: address });
  }
  for (const address of input.addresses) {
    if (isIPv6(address)) records.push({ name: input.host, type: 'AAAA', ttl: HOST_RECORD_TTL_S, flush: true, data: address });
  }
  records.push({ name: SERVICE_ENUMERATION_NAME, type: 'PTR', ttl: OTHER_RECORD_TTL_S, data: input.serviceType });
  return records;
}

/**
 * The goodbye for an advertisement: its records again with TTL 0 (RFC 6762 section 10.1). The type
 * enumeration PTR is left out: every Neuron on the link shares it, and a goodbye for it would make
 * browsers forget the type while other Neurons still offer it.
 */
export function goodbyeRecords(records: readonly MdnsRecord[]): MdnsRecord[] {
  return records
    .filter((record) => !sameName(record.name, SERVICE_ENUMERATION_NAME))
    .map((record) => ({ name: record.name, type: record.type, ttl: 0, data: record.data }));
}

/** The records a prober proposes for its names, for the authority section (RFC 6762 section 8.2). */
export function proposedRecords(records: readonly MdnsRecord[], names: readonly string[]): MdnsRecord[] {
  return records.filter((record) => record.type !== 'PTR' && names.some((name) => sameName(record.name, name)));
}

/** DNS names compare case-insensitively, for ASCII letters only (RFC 6762 section 16). */
export function sameName(a: string, b: string): boolean {
  return asciiLower(a.replace(/\.$/, '')) === asciiLower(b.replace(/\.$/, ''));
}

function asciiLower(value: string): string {
  return value.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}

const TYPE_CODES: Readonly<Record<string, number>> = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33 };

/**
 * A record's type and rdata as one string that sorts like RFC 6762 section 8.2 compares records
 * (type, then the rdata bytes): four hex digits of the type code, a colon, the rdata in hex. Types we
 * do not publish, and rdata we cannot read, get a key that matches none of ours.
 */
export function recordKey(record: MdnsRecord): string {
  const code = TYPE_CODES[record.type];
  const rdata = code === undefined ? null : rdataBytes(record.type, record.data);
  if (code === undefined || rdata === null) return `ffff:other:${record.type}:${JSON.stringify(record.data ?? null)}`;
  return `${code.toString(16).padStart(4, '0')}:${rdata.toString('hex')}`;
}

/** The keys of the records named `name`. */
export function recordKeys(records: readonly MdnsRecord[], name: string): Set<string> {
  return new Set(records.filter((record) => sameName(record.name, name)).map(recordKey));
}

/**
 * Simultaneous probe tie-breaking (RFC 6762 section 8.2): both record lists sorted, compared pairwise;
 * the first difference decides, else the longer list. Negative when ours is lexicographically
 * earlier (we lose: wait a second and probe again), zero when the data is identical (no conflict),
 * positive when we win.
 */
export function compareProbeRecords(ours: readonly MdnsRecord[], theirs: readonly MdnsRecord[]): number {
  const a = ours.map(recordKey).sort();
  const b = theirs.map(recordKey).sort();
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function rdataBytes(type: string, data: unknown): Buffer | null {
  switch (type) {
    case 'A':
      return typeof data === 'string' && isIPv4(data) ? Buffer.from(data.split('.').map(Number)) : null;
    case 'AAAA':
      return typeof data === 'string' ? ipv6Bytes(data) : null;
    case 'PTR':
      return typeof data === 'string' ? nameBytes(data) : null;
    case 'TXT':
      return txtBytes(data);
    case 'SRV':
      return srvBytes(data);
    default:
      return null;
  }
}

/** A name as uncompressed wire labels, ASCII lower-cased so that case never makes two names differ. */
function nameBytes(name: string): Buffer {
  const labels = asciiLower(name.replace(/^\.|\.$/g, ''))
    .split('.')
    .filter((label) => label.length > 0);
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'utf8');
    parts.push(Buffer.from([Math.min(bytes.length, 255)]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function txtBytes(data: unknown): Buffer | null {
  const entries = Array.isArray(data) ? data : [data];
  const parts: Buffer[] = [];
  for (const entry of entries) {
    let bytes: Buffer;
    if (Buffer.isBuffer(entry)) bytes = entry;
    else if (entry instanceof Uint8Array) bytes = Buffer.from(entry);
    else if (typeof entry === 'string') bytes = Buffer.from(entry, 'utf8');
    else return null;
    parts.push(Buffer.from([Math.min(bytes.length, 255)]), bytes);
  }
  return Buffer.concat(parts);
}

function srvBytes(data: unknown): Buffer | null {
  if (typeof data !== 'object' || data === null) return null;
  const { priority = 0, weight = 0, port, target } = data as Record<string, unknown>;
  const numbers = [priority, weight, port];
  if (typeof target !== 'string' || !numbers.every((n) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffff)) {
    return null;
  }
  const fixed = Buffer.alloc(6);
  for (const [i, n] of numbers.entries()) fixed.writeUInt16BE(n as number, i * 2);
  return Buffer.concat([fixed, nameBytes(target)]);
}

/** The 16 bytes of an IPv6 address (a zone suffix like `%eth0` is ignored); null when it is not one. */
export function ipv6Bytes(address: string): Buffer | null {
  const plain = address.split('%')[0] ?? '';
  if (!isIPv6(plain)) return null;
  const groups = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((piece) => {
      if (!piece.includes('.')) return [Number.parseInt(piece, 16)];
      const [a = 0, b = 0, c = 0, d = 0] = piece.split('.').map(Number); // an embedded IPv4 address
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const gap = plain.indexOf('::');
  let all: number[];
  if (gap === -1) {
    all = groups(plain);
  } else {
    const head = groups(plain.slice(0, gap));
    const tail = groups(plain.slice(gap + 2));
    all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  if (all.length !== 8) return null;
  const bytes = Buffer.alloc(16);
  for (const [i, group] of all.entries()) bytes.writeUInt16BE(group, i * 2);
  return bytes;
}
