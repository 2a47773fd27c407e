/**
 * The advertiser's sockets: one bonjour-service instance per network interface. Each holds a
 * multicast-dns socket that joins 224.0.0.251 and sends on that interface only, and bonjour-service's
 * responder, which answers queries from the records registered on it. Probing, announcing and
 * goodbyes are driven by advertisement.ts.
 */
import { EventEmitter, once } from 'node:events';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Bonjour } from 'bonjour-service';
import type { MdnsPacket, MdnsRecord } from './dns-records.ts';

/** One interface as the advertiser uses it. */
export interface LinkInfo {
  /** The interface name (`eth0`). */
  name: string;
  /** Its first IPv4 address: multicast-dns sends and joins the group by address, and mDNS runs over IPv4. */
  multicastAddress: string;
  /** Every address it holds, IPv4 first: published as A and AAAA records on this interface. */
  addresses: string[];
}

export interface LinkSelection {
  usable: LinkInfo[];
  /** Configured interfaces that do not exist (yet). */
  missing: string[];
  /** Configured interfaces without an IPv4 address (without a configuration they are just skipped). */
  withoutIpv4: string[];
  /** Configured interfaces holding none of the addresses the server is bound to (nothing to advertise there). */
  notBound: string[];
}

/** `os.networkInterfaces()`'s shape; passed in by tests, read from the system otherwise. */
export type InterfaceTable = NodeJS.Dict<Array<{ address: string; internal: boolean }>>;

/** Whether an address is a loopback address (127.0.0.0/8, ::1, or 127.x written IPv4-mapped). */
export function isLoopbackAddress(address: string): boolean {
  const lower = address.toLowerCase();
  return lower === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(lower);
}

/**
 * Which of an interface's addresses the server answers on: all of them when bound to `::` (Node's
 * `::` listener is dual-stack), the IPv4 ones when bound to `0.0.0.0`, else only the bound address.
 * Undefined (no bound address known) keeps every address.
 */
export function boundAddressesOf(addresses: readonly string[], boundAddress: string | undefined): string[] {
  if (boundAddress === undefined || boundAddress === '::') return [...addresses];
  if (boundAddress === '0.0.0.0') return addresses.filter((a) => isIPv4(a));
  return addresses.filter((a) => a.toLowerCase() === boundAddress.toLowerCase());
}

/**
 * Why nothing is advertised at all, or null when advertising makes sense: a server bound to a
 * loopback address answers only this machine, so announcing it on the network would point devices at
 * an address they cannot reach. Only an explicitly configured loopback interface (a test network,
 * or discovery among this machine's own processes) is advertised on then.
 */
export function notAdvertisedReason(
  boundAddress: string | undefined,
  configured: readonly string[],
  current: InterfaceTable = networkInterfaces(),
): string | null {
  if (boundAddress === undefined || !isLoopbackAddress(boundAddress)) return null;
  const loopbackConfigured = configured.some((name) =>
    (current[name] ?? []).some((info) => info.internal && info.address.toLowerCase() === boundAddress.toLowerCase()),
  );
  if (loopbackConfigured) return null;
  return `the server is bound to the loopback address ${boundAddress} only, which other devices cannot reach (set server.host to 0.0.0.0, ::, or this machine's LAN address to be discovered)`;
}

/**
 * The interfaces to advertise on now: the configured names, or when none are configured every
 * interface that has an IPv4 address (loopback included, so processes on this machine see the Neuron).
 * Each publishes only those of its addresses the server is bound to (boundAddressesOf); an interface
 * with none of them is left out.
 */
export function selectLinks(
  configured: readonly string[],
  boundAddress?: string,
  current: InterfaceTable = networkInterfaces(),
): LinkSelection {
  const names = configured.length > 0 ? configured : Object.keys(current);
  const selection: LinkSelection = { usable: [], missing: [], withoutIpv4: [], notBound: [] };
  for (const name of names) {
    const infos = current[name];
    if (infos === undefined) {
      selection.missing.push(name);
      continue;
    }
    const addresses = [...new Set(infos.map((info) => info.address))];
    const ordered = [...addresses.filter((a) => isIPv4(a)), ...addresses.filter((a) => isIPv6(a))];
    const multicastAddress = ordered.find((a) => isIPv4(a));
    if (multicastAddress === undefined) {
      if (configured.length > 0) selection.withoutIpv4.push(name);
      continue;
    }
    const advertised = boundAddressesOf(ordered, boundAddress);
    if (advertised.length > 0) selection.usable.push({ name, multicastAddress, addresses: advertised });
    else if (configured.length > 0) selection.notBound.push(name);
  }
  return selection;
}

/** Configured entries as interface names; an address becomes the name of the interface holding it. */
export function interfaceNameFor(entry: string): string | undefined {
  if (isIP(entry) === 0) return entry;
  return Object.entries(networkInterfaces()).find(([, infos]) => (infos ?? []).some((info) => info.address === entry))?.[0];
}

/** The part of multicast-dns we use. */
interface MulticastDns extends EventEmitter {
  query(packet: MdnsPacket, callback: (error?: Error | null) => void): void;
  respond(packet: MdnsPacket, callback: (error?: Error | null) => void): void;
}

/** bonjour-service's responder: answers queries from its registered records. */
interface Responder {
  mdns: MulticastDns;
  register(records: MdnsRecord[]): void;
  unregister(records: MdnsRecord[]): void;
}

export interface LinkEvents {
  /** Every mDNS packet heard on the socket (queries and responses, ours included). */
  packet(packet: MdnsPacket): void;
  /** A failure worth a log line: a send that failed, or a socket warning. */
  warning(error: Error): void;
}

export class Link {
  readonly name: string;
  readonly multicastAddress: string;
  addresses: string[];
  /** The records registered with the responder (and announced) on this interface. */
  published: MdnsRecord[] = [];
  readonly #bonjour: Bonjour;
  readonly #responder: Responder;
  #closing: Promise<void> | undefined;

  private constructor(options: { info: LinkInfo; bonjour: Bonjour; responder: Responder }) {
    const { info, bonjour, responder } = options;
    this.name = info.name;
    this.multicastAddress = info.multicastAddress;
    this.addresses = [...info.addresses];
    this.#bonjour = bonjour;
    this.#responder = responder;
  }

  /**
   * Opens the socket (UDP 5353 on the wildcard address, the group joined on this interface) and
   * resolves once it is bound. Rejects when it cannot bind or join, or when `signal` aborts.
   */
  static async open(info: LinkInfo, events: LinkEvents, signal: AbortSignal): Promise<Link> {
    // `interface` picks where queries and answers go out and where the group is joined; `bind` stays
    // the wildcard address, because a socket bound to the interface address never receives packets
    // sent to 224.0.0.251. bonjour-service passes both straight to multicast-dns.
    const options = { interface: info.multicastAddress, bind: '0.0.0.0' };
    // Loaded with the first link, so that a Neuron with discovery off never loads it. CommonJS:
    // module.exports is the default export, whether Node or the bundle in dist/server/ loads it.
    const {
      default: { Bonjour },
    } = await import('bonjour-service');
    const bonjour = new Bonjour(options as ConstructorParameters<typeof Bonjour>[0], (error: unknown) =>
      events.warning(error instanceof Error ? error : new Error(String(error))),
    );
    // bonjour-service keeps its responder private; we register our own records on it instead of
    // using publish(), which puts every interface's addresses in every answer and, when its probe
    // finds the name taken, sends goodbyes for the other device's name.
    const responder = (bonjour as unknown as { server?: Responder }).server;
    if (responder === undefined || !(responder.mdns instanceof EventEmitter)) {
      bonjour.destroy();
      throw new Error('bonjour-service no longer exposes its responder; the discovery advertiser needs updating');
    }
    const link = new Link({ info, bonjour, responder });
    const { mdns } = responder;
    // multicast-dns joins the group when the socket listens and says so with 'networkInterface'.
    let joined = false;
    mdns.once('networkInterface', () => {
      joined = true;
    });
    mdns.on('warning', (error: Error) => events.warning(error));
    mdns.on('packet', (packet: MdnsPacket) => events.packet(packet));
    // Bind failures (EADDRINUSE, EACCES) arrive as 'error'; without a listener they would be thrown.
    mdns.on('error', (error: Error) => events.warning(error));
    try {
      await once(mdns, 'ready', { signal });
      if (!joined) throw new Error(`cannot join the mDNS group on ${info.name} (${info.multicastAddress})`);
    } catch (error) {
      await link.close();
      throw error;
    }
    return link;
  }

  /** Answers queries with these records from now on. */
  register(records: MdnsRecord[]): void {
    this.#responder.register(records);
    this.published = [...this.published, ...records];
  }

  /** Stops answering with any record published here. */
  unregisterAll(): void {
    this.#responder.unregister(this.published);
    this.published = [];
  }

  /** Sends a response (announcement, goodbye) to the group; resolves once the socket sent it. */
  respond(packet: MdnsPacket): Promise<void> {
    return new Promise((resolve, reject) => this.#responder.mdns.respond(packet, (error) => (error ? reject(error) : resolve())));
  }

  /** Sends a query (a probe) to the group; resolves once the socket sent it. */
  query(packet: MdnsPacket): Promise<void> {
    return new Promise((resolve, reject) => this.#responder.mdns.query(packet, (error) => (error ? reject(error) : resolve())));
  }

  /** Leaves the group and closes the socket. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => this.#bonjour.destroy(() => resolve()));
    return this.#closing;
  }
}
