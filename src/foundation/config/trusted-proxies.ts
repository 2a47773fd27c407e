/**
 * The rule for one `server.trusted_proxies` entry, in the config layer because the loader checks
 * every entry before anything starts and the HTTP edge (api/client-address.ts) compiles them.
 */
import { isIP } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';

/** Named ranges proxy-addr understands besides addresses and CIDRs. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * What is wrong with one `server.trusted_proxies` entry, or null when it compiles: the config
 * loader reports these with every other problem, before anything starts.
 */
export function trustedProxyProblem(entry: string): string | null {
  if (NAMED_RANGES.has(entry)) return null;
  const slash = entry.indexOf('/');
  if (isIP(slash === -1 ? entry : entry.slice(0, slash)) === 0) {
    return `${JSON.stringify(entry)} is not an IP address, a CIDR range or one of loopback, linklocal, uniquelocal`;
  }
  try {
    // The prefix length is checked by proxy-addr itself (0-32 for IPv4, 0-128 for IPv6).
    proxyAddr.compile([entry]);
    return null;
  } catch (error) {
    return `${JSON.stringify(entry)}: ${(error as Error).message}`;
  }
}
