/**
 * One run of the mDNS advertisement, from start() to stop(), on bonjour-service (multicast-dns
 * sockets and their query responder, see links.ts): the responder's life cycle from RFC 6762:
 * probe the names (section 8.1, ./probe-round.ts), settle simultaneous probes (section 8.2), rename
 * on a conflict (section 9), announce (section 8.3), follow interface changes, and say goodbye on
 * stop (section 10.1). ./advertiser.ts starts and stops runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { NeuronError } from '../../foundation/errors/index.ts';
import { goodbyeRecords, recordKey, recordKeys, sameName, serviceRecords, type MdnsPacket, type MdnsRecord } from './dns-records.ts';
import { Link, selectLinks, type LinkInfo } from './links.ts';
import { MAX_RENAME_NUMBER, NEURON_SERVICE_TYPE_LABEL, deriveHostname, numberedHostLabel, numberedInstanceName } from './records.ts';
import { probeRound, type ProbeOutcome } from './probe-round.ts';
import type { DiscoveryLogger } from './types.ts';

/** RFC 6762 section 8.2: the loser of a simultaneous probe waits one second and probes again. */
const PROBE_TIE_BACKOFF_MS = 1_000;
/** RFC 6762 section 8.1: after 15 conflicts within 10 seconds, wait 5 seconds before each further probe. */
const CONFLICT_BURST = 15;
const CONFLICT_WINDOW_MS = 10_000;
const CONFLICT_SLOWDOWN_MS = 5_000;
/**
 * RFC 6762 section 8.3: at least two announcements one second apart, each further gap at least
 * doubled. We send three (at 0, 1 and 3 seconds) to ride out a lost packet.
 */
const ANNOUNCE_GAPS_MS = [1_000, 2_000];
/**
 * How often the interfaces are read again, to follow address changes (DHCP) and interfaces that
 * come or go. A changed address is stale in browsers for at most this long; reading the interface
 * list is cheap.
 */
const INTERFACE_RECHECK_MS = 15_000;

const SERVICE_TYPE_FQDN = `${NEURON_SERVICE_TYPE_LABEL}.local`;

export interface AdvertisementSettings {
  requestedName: string;
  port: number;
  txt: Record<string, string>;
  /** Configured interface names; empty means every interface with an IPv4 address. */
  interfaces: string[];
  /** The address the server's listener is bound to; only addresses it answers on are published. */
  boundAddress: string | undefined;
  logger: DiscoveryLogger;
  onName(name: string): void;
}

/** One run of the advertiser, from start() to stop(). */
export class Advertisement {
  readonly #settings: AdvertisementSettings;
  readonly #abort = new AbortController();
  readonly #links = new Map<string, Link>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #state: 'opening' | 'probing' | 'announced' | 'failed' | 'stopped' = 'opening';
  #instanceNumber = 1;
  #hostNumber = 1;
  #instanceName: string;
  #hostLabel: string;
  #conflicts: number[] = [];
  /** While probing: the probe's packet handler. */
  #probeListener: ((packet: MdnsPacket) => void) | undefined;
  /** While announced: the keys of our records, by name (to tell our own records from a conflict). */
  #ownKeys = new Map<string, Set<string>>();
  /** Background work (re-probing after a conflict, re-reading interfaces) that stop() waits for. */
  readonly #background = new Set<Promise<void>>();
  readonly #warnedInterfaces = new Set<string>();
  /** Settles when the first probing is over (or was cancelled by stop). */
  readonly started: Promise<void>;

  constructor(settings: AdvertisementSettings) {
    this.#settings = settings;
    this.#instanceName = settings.requestedName;
    this.#hostLabel = deriveHostname(settings.requestedName);
    this.started = this.#run();
  }

  get #fqdn(): string {
    return `${this.#instanceName}.${SERVICE_TYPE_FQDN}`;
  }

  get #host(): string {
    return `${this.#hostLabel}.local`;
  }

  async #run(): Promise<void> {
    const { logger } = this.#settings;
    try {
      await this.#openLinks();
      logger.debug(
        { instanceName: this.#instanceName, mdnsHostname: this.#host, interfaces: this.#linkNames() },
        'mDNS: probing the instance name',
      );
      await this.#probeUntilUnique();
      this.#announceAll();
      this.#logAdvertising();
      this.#scheduleRecheck();
    } catch (error) {
      if (this.#abort.signal.aborted) return; // stop() during start: nothing was announced
      this.#state = 'failed';
      logger.error({ err: error, instanceName: this.#instanceName }, 'mDNS: advertising failed');
      await this.#closeLinks();
      throw error;
    }
  }

  /** Opens a socket per usable interface; waits (re-reading the interfaces) until there is one. */
  async #openLinks(): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      const failures = await this.#openMissingLinks();
      if (this.#links.size > 0) return;
      if (failures.length > 0) throw failures[0];
      if (attempt === 0) {
        this.#settings.logger.warn(
          { interfaces: this.#settings.interfaces },
          'mDNS: none of the network interfaces to advertise on is usable yet; waiting for one',
        );
      }
      await sleep(INTERFACE_RECHECK_MS, undefined, { signal: this.#abort.signal });
    }
  }

  /** Opens sockets for usable interfaces that have none; returns the failures. */
  async #openMissingLinks(): Promise<unknown[]> {
    const { logger, interfaces } = this.#settings;
    const selection = selectLinks(interfaces, this.#settings.boundAddress);
    for (const name of [...selection.missing, ...selection.withoutIpv4, ...selection.notBound]) {
      if (this.#warnedInterfaces.has(name)) continue;
      this.#warnedInterfaces.add(name);
      const reason = selection.missing.includes(name)
        ? 'does not exist (yet)'
        : selection.notBound.includes(name)
          ? `does not hold the address the server is bound to (${this.#settings.boundAddress})`
          : 'has no IPv4 address (mDNS runs over IPv4)';
      logger.warn({ interface: name }, `mDNS: the network interface ${reason}; it is used once it can be`);
    }
    const failures: unknown[] = [];
    // allSettled, so that every socket opened is in #links (and closed by stop) before we go on.
    await Promise.allSettled(
      selection.usable
        .filter((info) => !this.#links.has(info.name))
        .map(async (info) => {
          try {
            const link = await this.#openLink(info);
            this.#links.set(info.name, link);
            this.#warnedInterfaces.delete(info.name);
          } catch (error) {
            if (this.#abort.signal.aborted) return;
            failures.push(error);
            logger.warn({ err: error, interface: info.name }, 'mDNS: cannot open the mDNS socket on this interface');
          }
        }),
    );
    this.#abort.signal.throwIfAborted();
    return failures;
  }

  #openLink(info: LinkInfo): Promise<Link> {
    const { logger } = this.#settings;
    return Link.open(
      info,
      {
        packet: (packet) => this.#onPacket(packet),
        warning: (error) => logger.debug({ err: error, interface: info.name }, 'mDNS: socket warning'),
      },
      this.#abort.signal,
    );
  }

  async #closeLinks(): Promise<void> {
    const links = [...this.#links.values()];
    this.#links.clear();
    await Promise.all(links.map((link) => link.close()));
  }

  #linkNames(): string[] {
    return [...this.#links.keys()];
  }

  /** The records we publish on one interface under the current names. */
  #recordsFor(addresses: readonly string[]): MdnsRecord[] {
    return serviceRecords({
      serviceType: SERVICE_TYPE_FQDN,
      fqdn: this.#fqdn,
      host: this.#host,
      port: this.#settings.port,
      txt: this.#settings.txt,
      addresses,
    });
  }

  /** Our records on every interface together: what a probe proposes, and what counts as ours. */
  #allRecords(): MdnsRecord[] {
    return this.#recordsFor([...this.#links.values()].flatMap((link) => link.addresses));
  }

  // --- probing --------------------------------------------------------------------------------

  /** Probes, renaming on conflicts, until the names are ours. */
  async #probeUntilUnique(): Promise<void> {
    const { logger, requestedName } = this.#settings;
    for (;;) {
      this.#abort.signal.throwIfAborted();
      this.#state = 'probing';
      const outcome = await this.#probe();
      if (outcome === 'unique') return;
      if (outcome === 'lost') {
        logger.debug({ instanceName: this.#instanceName }, 'mDNS: another device probes for the same name at the same time; probing again');
        await sleep(PROBE_TIE_BACKOFF_MS, undefined, { signal: this.#abort.signal });
        continue;
      }
      if (outcome.instance) {
        this.#instanceNumber += 1;
        this.#hostNumber = 1;
      } else {
        this.#hostNumber += 1;
      }
      if (this.#instanceNumber > MAX_RENAME_NUMBER || this.#hostNumber > MAX_RENAME_NUMBER) {
        throw new NeuronError('CONFLICT', { message: 'No free mDNS name was found on the local network' });
      }
      const previousHost = this.#host;
      this.#instanceName = numberedInstanceName(requestedName, this.#instanceNumber);
      this.#hostLabel = numberedHostLabel(deriveHostname(this.#instanceName), this.#hostNumber);
      if (outcome.instance) {
        logger.warn(
          { requestedName, instanceName: this.#instanceName, serviceType: NEURON_SERVICE_TYPE_LABEL },
          'mDNS: the instance name is taken on the local network; advertising under a new name',
        );
        this.#settings.onName(this.#instanceName);
      } else {
        logger.warn(
          { previousHostname: previousHost, mdnsHostname: this.#host },
          'mDNS: the host name is taken on the local network; using a new one',
        );
      }
      await this.#slowDownAfterManyConflicts();
    }
  }

  async #slowDownAfterManyConflicts(): Promise<void> {
    const now = Date.now();
    this.#conflicts = [...this.#conflicts.filter((at) => now - at < CONFLICT_WINDOW_MS), now];
    if (this.#conflicts.length >= CONFLICT_BURST) await sleep(CONFLICT_SLOWDOWN_MS, undefined, { signal: this.#abort.signal });
  }

  /** One probe round under the current names (./probe-round.ts). */
  #probe(): Promise<ProbeOutcome> {
    return probeRound({
      fqdn: this.#fqdn,
      host: this.#host,
      records: this.#allRecords(),
      links: () => this.#links.values(),
      signal: this.#abort.signal,
      listen: (listener) => {
        this.#probeListener = listener;
      },
      sendFailed: (link, error) => this.#sendFailed(link, error),
    });
  }

  // --- announcing -----------------------------------------------------------------------------

  #announceAll(): void {
    this.#abort.signal.throwIfAborted();
    this.#state = 'announced';
    this.#refreshOwnKeys();
    for (const link of this.#links.values()) this.#announceOn(link);
  }

  /** Registers our records with the interface's responder and announces them three times. */
  #announceOn(link: Link): void {
    link.unregisterAll();
    link.register(this.#recordsFor(link.addresses));
    const announcement: MdnsPacket = { answers: link.published };
    const send = () => {
      if (this.#state === 'announced') link.respond(announcement).catch((error: unknown) => this.#sendFailed(link, error));
    };
    send();
    let at = 0;
    for (const gap of ANNOUNCE_GAPS_MS) {
      at += gap;
      this.#later(at, send);
    }
  }

  /**
   * Remembers the records we publish under the current names. Records published earlier under the
   * same names stay ours too: an announcement still in flight when an address changed is not a conflict.
   */
  #refreshOwnKeys(): void {
    const all = this.#allRecords();
    const next = new Map<string, Set<string>>();
    for (const name of [this.#fqdn, this.#host]) {
      next.set(name, new Set([...(this.#ownKeys.get(name) ?? []), ...recordKeys(all, name)]));
    }
    this.#ownKeys = next;
  }

  #logAdvertising(): void {
    this.#settings.logger.info(
      {
        instanceName: this.#instanceName,
        serviceType: NEURON_SERVICE_TYPE_LABEL,
        mdnsHostname: this.#host,
        port: this.#settings.port,
        interfaces: this.#settings.interfaces.length > 0 ? this.#linkNames() : { auto: this.#linkNames() },
        txt: this.#settings.txt,
      },
      'mDNS: advertising the Neuron on the local network',
    );
  }

  // --- after announcing -----------------------------------------------------------------------

  #onPacket(packet: MdnsPacket): void {
    if (this.#state === 'probing') {
      this.#probeListener?.(packet);
      return;
    }
    if (this.#state !== 'announced' || packet.type !== 'response') return;
    // RFC 6762 section 9: another device answering for one of our names with other data. Our own
    // answers come back to us too (multicast loopback); they carry exactly our records.
    for (const record of [...(packet.answers ?? []), ...(packet.additionals ?? [])]) {
      if ((record.ttl ?? 0) <= 0) continue;
      for (const [name, keys] of this.#ownKeys) {
        if (sameName(record.name, name) && !keys.has(recordKey(record))) {
          this.#onLateConflict(name);
          return;
        }
      }
    }
  }

  /** Withdraws the records and probes again from the start; renames if the other device answers. */
  #onLateConflict(name: string): void {
    const { logger } = this.#settings;
    logger.warn({ instanceName: this.#instanceName, conflictingName: name }, 'mDNS: another device answers for our name; probing again');
    this.#state = 'probing';
    this.#clearTimers();
    for (const link of this.#links.values()) link.unregisterAll();
    this.#inBackground(async () => {
      try {
        await this.#probeUntilUnique();
        this.#announceAll();
        this.#logAdvertising();
        this.#scheduleRecheck();
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        this.#state = 'failed';
        logger.error({ err: error, instanceName: this.#instanceName }, 'mDNS: advertising failed');
      }
    });
  }

  #scheduleRecheck(): void {
    this.#later(INTERFACE_RECHECK_MS, () => {
      if (this.#state !== 'announced') return;
      this.#inBackground(async () => {
        await this.#recheckInterfaces();
        if (this.#state === 'announced') this.#scheduleRecheck();
      });
    });
  }

  /**
   * Follows interface changes: a changed address is announced (and the old one withdrawn with a
   * goodbye), a vanished interface's socket is closed, a new interface is announced on. A new
   * interface is not probed again: the names were probed already, and a conflict there is caught
   * like any later conflict.
   */
  async #recheckInterfaces(): Promise<void> {
    const { logger } = this.#settings;
    const wanted = new Map(selectLinks(this.#settings.interfaces, this.#settings.boundAddress).usable.map((info) => [info.name, info]));
    for (const [name, link] of [...this.#links]) {
      const now = wanted.get(name);
      if (now === undefined || now.multicastAddress !== link.multicastAddress) {
        this.#links.delete(name);
        await link.close(); // its address is gone, so a goodbye could not be sent from it anyway
        logger.info({ interface: name }, 'mDNS: stopped advertising on an interface that went away or lost its address');
      } else if (now.addresses.join() !== link.addresses.join()) {
        const stale = link.published.filter((r) => (r.type === 'A' || r.type === 'AAAA') && !now.addresses.includes(String(r.data)));
        link.addresses = now.addresses;
        this.#refreshOwnKeys(); // before our own announcement of the new addresses comes back to us
        if (stale.length > 0)
          await link.respond({ answers: goodbyeRecords(stale) }).catch((error: unknown) => this.#sendFailed(link, error));
        if (this.#state !== 'announced') return;
        this.#announceOn(link);
        logger.info({ interface: name, addresses: now.addresses }, 'mDNS: the interface addresses changed; announced the new ones');
      }
    }
    await this.#openMissingLinks();
    if (this.#state !== 'announced') return;
    const fresh = [...this.#links.values()].filter((link) => link.published.length === 0);
    if (fresh.length > 0) this.#refreshOwnKeys();
    for (const link of fresh) {
      this.#announceOn(link);
      logger.info({ interface: link.name }, 'mDNS: advertising on a new network interface');
    }
  }

  // --- stopping -------------------------------------------------------------------------------

  /** Sends goodbyes if announced, then closes the sockets. Resolves true when goodbyes were sent. */
  async stop(): Promise<boolean> {
    const wasAnnounced = this.#state === 'announced';
    this.#state = 'stopped';
    this.#abort.abort();
    this.#clearTimers();
    if (wasAnnounced) {
      // Wait until every goodbye is handed to the socket before closing it.
      await Promise.all(
        [...this.#links.values()].map((link) =>
          link.respond({ answers: goodbyeRecords(link.published) }).catch((error: unknown) => this.#sendFailed(link, error)),
        ),
      );
    }
    for (const link of this.#links.values()) link.unregisterAll();
    await Promise.allSettled([...this.#background, this.started]);
    await this.#closeLinks();
    return wasAnnounced;
  }

  // --- helpers --------------------------------------------------------------------------------

  #later(ms: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      task();
    }, ms);
    timer.unref(); // the sockets keep the process alive while advertising; timers alone should not
    this.#timers.add(timer);
  }

  #clearTimers(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #inBackground(task: () => Promise<void>): void {
    const running = task().catch((error: unknown) => {
      if (!this.#abort.signal.aborted) this.#settings.logger.error({ err: error }, 'mDNS: background work failed');
    });
    this.#background.add(running);
    void running.finally(() => this.#background.delete(running));
  }

  #sendFailed(link: Link, error: unknown): void {
    this.#settings.logger.debug({ err: error, interface: link.name }, 'mDNS: sending failed');
  }
}
