/**
 * One probe round of RFC 6762 section 8.1 for the instance and host names: three queries carrying
 * our proposed records in the authority section. Any answer for those names with other data is a
 * conflict; a simultaneous probe with lexicographically later data means we lost the tie-break
 * (section 8.2). ./advertisement.ts runs rounds until the names are ours.
 */
import { compareProbeRecords, proposedRecords, recordKey, recordKeys, sameName, type MdnsPacket, type MdnsRecord } from './dns-records.ts';
import type { Link } from './links.ts';

/** RFC 6762 section 8.1: three probes, 250 ms apart, the first after a random delay of up to 250 ms. */
const PROBE_COUNT = 3;
const PROBE_INTERVAL_MS = 250;
const PROBE_MAX_INITIAL_DELAY_MS = 250;

/** `unique`: the names are ours; `lost`: a simultaneous prober won; otherwise which name is taken. */
export type ProbeOutcome = 'unique' | 'lost' | { instance: boolean; host: boolean };

export interface ProbeRoundOptions {
  /** The instance's full name (`<instance>._careagent-neuron._tcp.local`). */
  fqdn: string;
  /** The host name (`<host>.local`). */
  host: string;
  /** Our records on every interface together. */
  records: MdnsRecord[];
  /** The open interfaces, read at each send. */
  links: () => Iterable<Link>;
  signal: AbortSignal;
  /** Installs (or, with undefined, removes) the handler of the packets heard while probing. */
  listen: (listener: ((packet: MdnsPacket) => void) | undefined) => void;
  sendFailed: (link: Link, error: unknown) => void;
}

export function probeRound(options: ProbeRoundOptions): Promise<ProbeOutcome> {
  const { fqdn, host, signal } = options;
  const proposed = proposedRecords(options.records, [fqdn, host]);
  const ours = { fqdn: proposed.filter((r) => sameName(r.name, fqdn)), host: proposed.filter((r) => sameName(r.name, host)) };
  const ourKeys = { fqdn: recordKeys(proposed, fqdn), host: recordKeys(proposed, host) };
  const probe: MdnsPacket = {
    questions: [
      { name: fqdn, type: 'ANY' },
      { name: host, type: 'ANY' },
    ],
    authorities: proposed,
  };

  return new Promise<ProbeOutcome>((resolve, reject) => {
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: ProbeOutcome | Error) => {
      clearTimeout(timer);
      options.listen(undefined);
      signal.removeEventListener('abort', onAbort);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new Error('stopped'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    options.listen((packet) => {
      if (packet.type === 'response') {
        let instance = false;
        let hostTaken = false;
        for (const record of [...(packet.answers ?? []), ...(packet.additionals ?? [])]) {
          if ((record.ttl ?? 0) <= 0) continue; // a goodbye does not claim the name
          if (sameName(record.name, fqdn) && !ourKeys.fqdn.has(recordKey(record))) instance = true;
          if (sameName(record.name, host) && !ourKeys.host.has(recordKey(record))) hostTaken = true;
        }
        if (instance || hostTaken) finish({ instance, host: hostTaken });
        return;
      }
      // Another prober's query: compare the records it proposes for each name we probe. Our own
      // probes come back with identical records, which compare equal and are ignored.
      for (const [name, mine] of [
        [fqdn, ours.fqdn],
        [host, ours.host],
      ] as const) {
        if (!(packet.questions ?? []).some((q) => sameName(q.name, name))) continue;
        const theirs = (packet.authorities ?? []).filter((r) => sameName(r.name, name));
        if (theirs.length > 0 && compareProbeRecords(mine, theirs) < 0) return finish('lost');
      }
    });

    const send = () => {
      for (const link of options.links()) {
        link.query(probe).catch((error: unknown) => options.sendFailed(link, error));
      }
      sent += 1;
      timer = setTimeout(sent < PROBE_COUNT ? send : () => finish('unique'), PROBE_INTERVAL_MS);
    };
    timer = setTimeout(send, Math.random() * PROBE_MAX_INITIAL_DELAY_MS);
  });
}
