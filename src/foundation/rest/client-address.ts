/**
 * The client address behind every per-address limit: the REST API's failed-authentication limit
 * and provider self-registration limit (src/http/authentication.ts, src/domains/providers/agent-routes.ts) and
 * the handshake's per-address cap on upgrades (src/domains/handshake/broker.ts). One function,
 * `ClientAddress.of`, answers for a REST request and for a raw WebSocket upgrade request alike.
 *
 * `server.trusted_proxies` lists the addresses and CIDR ranges of the reverse proxies and load
 * balancers in front of the Neuron (empty by default: trust nobody). `X-Forwarded-For` is read
 * only when the direct peer is one of them, and then from the right: each trusted hop hands over
 * to the address it saw, and the first address that is not a trusted proxy is the client. These
 * are fastify's `trustProxy` semantics (the same @fastify/proxy-addr compiles the list), and
 * src/http/app.ts gives fastify this same trust function, so `request.ip` agrees with it too.
 *
 * Limits count by `limitKey`: an IPv4 address as it is, an IPv6 address by its /64 prefix,
 * because one IPv6 host is normally handed a whole /64 and could otherwise rotate through
 * addresses to escape every per-address limit.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';
import { trustedProxyProblem } from '../config/trusted-proxies.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The client's address under server.trusted_proxies (src/foundation/rest/client-address.ts). */
    readonly clientAddress: string;
  }
}

/** Stands in for a peer whose address the socket no longer knows (it closed meanwhile). */
const UNKNOWN_ADDRESS = 'unknown';

export type TrustFunction = (address: string, hop: number) => boolean;

export interface ClientAddress {
  /** Whether a hop may be believed about the hop before it; fastify's `trustProxy`. */
  readonly trust: TrustFunction;
  /** The client's address, IPv4-mapped IPv6 written as IPv4. */
  of(request: IncomingMessage): string;
  /** The key per-address limits count by: `limitKey(of(request))`. */
  limitKeyOf(request: IncomingMessage): string;
}

/**
 * Compiles `server.trusted_proxies`. Throws an Error naming the option for an entry that is not an
 * IP address, a CIDR range (`10.0.0.0/8`, `2001:db8::/32`) or one of `loopback`, `linklocal`,
 * `uniquelocal`.
 */
export function createClientAddress(trustedProxies: readonly string[]): ClientAddress {
  const trust = compileTrust(trustedProxies);
  const of = (request: IncomingMessage): string => {
    // Oldest hop last: [peer, the address the peer saw, ...], stopping at the first untrusted one.
    const chain = proxyAddr.all(request, trust);
    for (let i = chain.length - 1; i >= 0; i--) {
      const address = chain[i];
      // A trusted proxy that wrote something other than an address: believe the proxy itself.
      if (typeof address === 'string' && isIP(address) !== 0) return normalizeAddress(address);
    }
    return UNKNOWN_ADDRESS;
  };
  return { trust, of, limitKeyOf: (request) => limitKey(of(request)) };
}

function compileTrust(trustedProxies: readonly string[]): TrustFunction {
  if (trustedProxies.length === 0) return () => false;
  for (const entry of trustedProxies) {
    const problem = trustedProxyProblem(entry);
    if (problem !== null) throw new Error(`server.trusted_proxies: ${problem}`);
  }
  return proxyAddr.compile([...trustedProxies]);
}

/** `::ffff:192.0.2.1` (an IPv4 client of a dual-stack listener) as `192.0.2.1`; anything else unchanged. */
export function normalizeAddress(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address);
  return groups !== null && isIpv4Mapped(groups) ? ipv4From(groups) : address;
}

/** What per-address limits count by: an IPv4 address, or the /64 prefix of an IPv6 address (`2001:db8:0:1::/64`). */
export function limitKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address);
  if (groups === null) return address;
  if (isIpv4Mapped(groups)) return ipv4From(groups);
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

function isIpv4Mapped(groups: number[]): boolean {
  return groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
}

function ipv4From(groups: number[]): string {
  const high = groups[6]!;
  const low = groups[7]!;
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The eight 16-bit groups of a valid IPv6 address (zone dropped, embedded IPv4 converted). */
function ipv6Groups(address: string): number[] | null {
  let text = address;
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const octets = tail.split('.').map(Number);
    if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) return null;
    text = `${text.slice(0, lastColon + 1)}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const rest = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array.from({ length: halves.length === 2 ? missing : 0 }, () => '0'), ...rest].map((group) =>
    Number.parseInt(group, 16),
  );
  return groups.some((group) => !Number.isInteger(group) || group < 0 || group > 0xffff) ? null : groups;
}
