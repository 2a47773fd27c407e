/**
 * The HTTP client for outbound deliveries (provider notices and webhooks), with the outbound
 * policy (./policy.ts) enforced on the address actually connected to:
 *
 * - before a request, a URL whose host is a literal IP address is checked (Node connects to a
 *   literal address without a lookup);
 * - every host name is resolved through our own lookup on the connection, which checks each
 *   address DNS returns and connects only to allowed ones. A name that resolved to a public
 *   address when it was accepted and to 127.0.0.1 or 169.254.169.254 now (DNS rebinding) is
 *   refused at connect time, before a byte is sent.
 *
 * Node's global fetch takes no lookup, so this uses undici's own fetch with an Agent per scheme
 * (plain http may be held to private addresses). Redirects, timeouts and bodies are the
 * caller's, as with fetch.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
// Types only: undici itself (about 3.6 MB of heap) is loaded on the first delivery, not at start,
// since many Neurons never push anything (providers that pull, no webhooks).
import type { Agent, RequestInit, Response } from 'undici';
import type { ErrorCode } from '../errors/index.ts';
import { parseIpAddress, urlHost, type OutboundPolicy } from './policy.ts';

/** The catalogue code that names a refusal by the outbound policy, in answers and dead letters. */
export const OUTBOUND_REFUSED_CODE = 'OUTBOUND_TARGET_REFUSED' satisfies ErrorCode;

/** A target the outbound policy refuses: permanent, retrying cannot help. */
export class OutboundRefusedError extends Error {
  readonly code = OUTBOUND_REFUSED_CODE;

  constructor(message: string) {
    super(message);
    this.name = 'OutboundRefusedError';
  }
}

/** The policy refusal behind a failed request (thrown directly or as fetch's cause), or null. */
export function outboundRefusal(error: unknown): OutboundRefusedError | null {
  if (error instanceof OutboundRefusedError) return error;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause instanceof OutboundRefusedError ? cause : null;
}

function policyLookup(policy: OutboundPolicy, protocol: 'http:' | 'https:'): LookupFunction {
  return (hostname, options, callback) => {
    const all: LookupAllOptions = { family: options.family, hints: options.hints, all: true };
    dnsLookup(hostname, all, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const allowed: LookupAddress[] = [];
      let refusal: string | null = null;
      for (const entry of addresses) {
        const why = policy.addressRefusal(entry.address, hostname, protocol);
        if (why === null) allowed.push(entry);
        else refusal ??= `${hostname} resolves to ${entry.address}, which ${why}`;
      }
      const first = allowed[0];
      if (first === undefined) {
        callback(new OutboundRefusedError(refusal ?? `${hostname} resolves to no address`), '', 0);
        return;
      }
      // Only allowed addresses are handed back, so the socket cannot connect anywhere else.
      if (options.all === true) (callback as unknown as (error: null, addresses: LookupAddress[]) => void)(null, allowed);
      else callback(null, first.address, first.family);
    });
  };
}

type Undici = typeof import('undici');

export class OutboundClient {
  readonly #policy: OutboundPolicy;
  #undici: Promise<{ fetch: Undici['fetch']; agents: Record<'http:' | 'https:', Agent> }> | null = null;

  constructor(policy: OutboundPolicy) {
    this.#policy = policy;
  }

  /** undici and one Agent per scheme, created on first use. */
  #client(): Promise<{ fetch: Undici['fetch']; agents: Record<'http:' | 'https:', Agent> }> {
    // undici is CommonJS: its module.exports is the default export both when Node loads it and in
    // the bundle of dist/server/ (where esbuild gives a dynamically imported CommonJS chunk no
    // named exports).
    this.#undici ??= import('undici').then(({ default: undici }) => ({
      fetch: undici.fetch,
      agents: {
        'http:': new undici.Agent({ connect: { lookup: policyLookup(this.#policy, 'http:') } }),
        'https:': new undici.Agent({ connect: { lookup: policyLookup(this.#policy, 'https:') } }),
      },
    }));
    return this.#undici;
  }

  /** fetch, refused with OutboundRefusedError (directly or as the cause) when the policy says no. */
  async fetch(target: string, init: Omit<RequestInit, 'dispatcher'>): Promise<Response> {
    const url = new URL(target);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new OutboundRefusedError(`${url.protocol.replace(/:$/, '')} URLs are never delivered to`);
    // Node connects to a literal address without a lookup, so it is checked here; a name (even
    // localhost) is checked on every address it resolves to, in the lookup.
    const host = urlHost(url);
    if (parseIpAddress(host) !== null) {
      const refusal = this.#policy.addressRefusal(host, host, url.protocol);
      if (refusal !== null) throw new OutboundRefusedError(`${host} ${refusal}`);
    }
    const { fetch, agents } = await this.#client();
    return fetch(url, { ...init, dispatcher: agents[url.protocol] });
  }

  /** Closes idle connections; requests still running finish first. */
  async close(): Promise<void> {
    if (this.#undici === null) return;
    const { agents } = await this.#undici;
    await Promise.all([agents['http:'].close(), agents['https:'].close()]);
  }
}
