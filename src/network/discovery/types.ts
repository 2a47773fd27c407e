/**
 * Types shared by the discovery advertiser and browser. No I/O here.
 */

/**
 * The logging surface discovery needs. A pino logger satisfies it; so does a small test recorder.
 * The first argument is structured context, the second the human message.
 */
export interface DiscoveryLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface DiscoveryAdvertiserOptions {
  /**
   * The DNS-SD instance name, usually the organization's display name. Dots and control
   * characters are replaced and the name is shortened to fit one DNS label (see records.ts).
   */
  instanceName: string;
  /** The port the Neuron listens on (REST and the handshake WebSocket share it). */
  port: number;
  /** The organization's 10-digit NPI, published in the `npi` TXT key. */
  organizationNpi: string;
  /** The organization's name, published in the `name` TXT key. */
  organizationName: string;
  /** Whether the listener speaks TLS; published as `tls=1` / `tls=0`. */
  tls: boolean;
  /**
   * Network interfaces to advertise on, by name (`eth0`) or by IPv4/IPv6 address. Absent or
   * empty: every interface with an IPv4 address, loopback included. Each interface answers with
   * its own addresses. A name that does not exist yet is used once it appears.
   */
  interfaces?: readonly string[];
  /**
   * The address the server's listener is bound to (`server.address().address`). Only addresses it
   * answers on are published: `::` every address, `0.0.0.0` the IPv4 ones, a specific address just
   * that one. Absent: every address of the chosen interfaces.
   */
  boundAddress?: string;
  logger: DiscoveryLogger;
}

export interface DiscoveryAdvertiser {
  /**
   * Probes the instance and host names on the network (renaming them on a conflict) and announces
   * the service. Resolves once the names are ours. Calling it again while running is a no-op.
   */
  start(): Promise<void>;
  /**
   * Sends goodbye packets (TTL 0) so browsers drop the service at once, waits until they are sent,
   * then closes the sockets. Safe to call more than once and while `start()` is still probing.
   */
  stop(): Promise<void>;
  /** The instance name currently advertised: the requested one, or the one chosen after a conflict. */
  readonly instanceName: string;
}

export interface BrowseOptions {
  /** How long to listen for answers, in milliseconds. */
  timeoutMs?: number;
  /**
   * Browse on one interface only, by name (`eth0`) or IPv4 address. Absent: the operating
   * system's default multicast interface for sending, answers accepted from every interface.
   */
  interface?: string;
}

export interface WatchOptions {
  /** As in {@link BrowseOptions.interface}. */
  interface?: string;
}

export interface NeuronWatchListener {
  /** A Neuron appeared, or its SRV/TXT data changed (same `fqdn`, new values). */
  up?(neuron: DiscoveredNeuron): void;
  /** A Neuron sent goodbye packets. */
  down?(neuron: DiscoveredNeuron): void;
  /** The mDNS socket failed (for example port 5353 held exclusively by another program). */
  error?(error: Error): void;
}

export interface NeuronWatcher {
  stop(): Promise<void>;
}

/** One Neuron found on the local network. Every field comes from the network: treat as untrusted. */
export interface DiscoveredNeuron {
  /** The DNS-SD instance name (possibly renamed after a conflict, like `Clinic (2)`). */
  name: string;
  /** The full service name, unique on the link; use it as the key. */
  fqdn: string;
  /** The SRV target host, without the trailing dot (`clinic.local`). */
  host: string;
  port: number;
  /** A and AAAA addresses that came with the answer, IPv4 first. */
  addresses: string[];
  /** Every TXT key (lower-cased) and its value. */
  txt: Record<string, string>;
  /** `txt.npi`, when present. */
  npi: string | null;
  /** `txt.name`, when present. */
  organizationName: string | null;
  /** `txt.ver`, when present. */
  protocolVersion: string | null;
  /** True when `txt.tls` is `1`. */
  tls: boolean;
  /** `ws(s)://<first IPv4 address, else host>:<port><txt.path, else /ws/handshake>`. */
  handshakeUrl: string;
}
