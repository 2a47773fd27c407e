/**
 * Real mDNS on the loopback interface: the advertiser and the browser (both on bonjour-service)
 * exchange actual multicast packets on 127.0.0.1, and a bare bonjour-service socket (`openWire`)
 * records every packet, so that what goes on the wire is checked independently of our own parsing.
 * Everything is pinned to loopback with the `interfaces` / `interface` options, so nothing is sent
 * on any other network. See docs/discovery.md ("How the test network works").
 */
import assert from 'node:assert/strict';
import { type EventEmitter, once } from 'node:events';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { Bonjour } from 'bonjour-service';
import { isNeuronError } from '../../foundation/errors/index.ts';
import { browseNeurons, watchNeurons } from './browser.ts';
import {
  createDiscoveryAdvertiser,
  type DiscoveredNeuron,
  type DiscoveryAdvertiser,
  type DiscoveryAdvertiserOptions,
  type DiscoveryLogger,
} from './index.ts';

// The loopback interface's name differs by system (`lo` on Linux, `lo0` on macOS).
const LOOPBACK =
  Object.entries(networkInterfaces()).find(([, infos]) => (infos ?? []).some((i) => i.internal && i.family === 'IPv4'))?.[0] ?? 'lo';
const LOOPBACK_IPV4 = networkInterfaces()[LOOPBACK]?.find((i) => i.family === 'IPv4')?.address ?? '127.0.0.1';
/** Exactly the type patient CareAgents browse for. */
const SERVICE_TYPE = '_careagent-neuron._tcp.local';
// Unique per run, so parallel runs on one machine do not see each other's Neurons as their own.
const RUN = `${process.pid}-${Date.now().toString(36)}`;
// Generous deadlines: probing alone takes about 0.75 s (RFC 6762 section 8.1: three probes 250 ms
// apart), a lost simultaneous probe waits another second, and a renamed instance probes again.
const FIND_DEADLINE_MS = 8_000;
const BROWSE_ROUND_MS = 1_500; // one browse round: the first answer arrives within ~0.5 s of the query
const GOODBYE_DEADLINE_MS = 4_000;
const WIRE_DEADLINE_MS = 2_000; // a packet already sent on loopback reaches the listener in well under this

interface LogEntry {
  level: 'info' | 'warn' | 'error' | 'debug';
  obj: object;
  msg: string | undefined;
}

function recordingLogger(entries: LogEntry[]): DiscoveryLogger {
  const at = (level: LogEntry['level']) => (obj: object, msg?: string) => {
    entries.push({ level, obj, msg });
  };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

const started: DiscoveryAdvertiser[] = [];
function advertiser(options: Omit<DiscoveryAdvertiserOptions, 'interfaces'>): DiscoveryAdvertiser {
  const created = createDiscoveryAdvertiser({ ...options, interfaces: [LOOPBACK] });
  started.push(created);
  return created;
}

/** Browses in rounds until `wanted` holds for the list, or the deadline passes. */
async function browseUntil(wanted: (list: DiscoveredNeuron[]) => boolean): Promise<DiscoveredNeuron[]> {
  const deadline = Date.now() + FIND_DEADLINE_MS;
  let list: DiscoveredNeuron[] = [];
  while (Date.now() < deadline) {
    list = await browseNeurons({ timeoutMs: BROWSE_ROUND_MS, interface: LOOPBACK });
    if (wanted(list)) return list;
  }
  assert.fail(`not found within ${FIND_DEADLINE_MS} ms; saw: ${list.map((n) => n.name).join(', ') || 'nothing'}`);
}

const byName = (list: DiscoveredNeuron[], name: string) => list.find((n) => n.name === name);
const fqdnOf = (name: string) => `${name}.${SERVICE_TYPE}`;

// --- the wire ---------------------------------------------------------------------------------

interface WireRecord {
  name: string;
  type: string;
  ttl?: number;
  data?: unknown;
}
interface WirePacket {
  type?: string;
  questions?: Array<{ name: string; type: string }>;
  answers?: WireRecord[];
  authorities?: WireRecord[];
  additionals?: WireRecord[];
}
interface Wire {
  packets: WirePacket[];
  /** Answers queries for these records from now on, like another device would. */
  register(records: WireRecord[]): void;
  /** Sends an unsolicited response. */
  respond(packet: WirePacket): Promise<void>;
  close(): Promise<void>;
}

/** A bare bonjour-service socket on loopback that records every mDNS packet it hears. */
async function openWire(): Promise<Wire> {
  const bonjour = new Bonjour({ interface: LOOPBACK_IPV4, bind: '0.0.0.0' } as ConstructorParameters<typeof Bonjour>[0]);
  type Respond = (packet: WirePacket, callback: (error?: Error | null) => void) => void;
  const server = (bonjour as unknown as { server: { mdns: EventEmitter & { respond: Respond }; register(r: WireRecord[]): void } }).server;
  const packets: WirePacket[] = [];
  server.mdns.on('packet', (packet: WirePacket) => packets.push(packet));
  await once(server.mdns, 'ready');
  return {
    packets,
    register: (records) => server.register(records),
    respond: (packet) => new Promise<void>((resolve, reject) => server.mdns.respond(packet, (e) => (e ? reject(e) : resolve()))),
    close: () => new Promise<void>((resolve) => bonjour.destroy(() => resolve())),
  };
}

const recordsOf = (packets: WirePacket[]) =>
  packets.filter((p) => p.type === 'response').flatMap((p) => [...(p.answers ?? []), ...(p.additionals ?? [])]);
const txtStrings = (record: WireRecord | undefined) => ((record?.data ?? []) as Buffer[]).map((b) => Buffer.from(b).toString('utf8'));

async function eventually(check: () => boolean, ms: number, message: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(message);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('discovery over real mDNS on loopback', () => {
  let wire: Wire;
  before(async () => {
    wire = await openWire();
  });
  after(async () => {
    await Promise.all(started.map((a) => a.stop()));
    await wire.close();
  });

  const logs: LogEntry[] = [];
  const logger = recordingLogger(logs);
  const plainName = `Neuron Test ${RUN} A`;
  const tlsName = `Neuron Test ${RUN} B`;
  let plain: DiscoveryAdvertiser;

  it('advertises exactly _careagent-neuron._tcp, and a browser finds each Neuron with its TXT record and handshake URL', async () => {
    plain = advertiser({
      instanceName: plainName,
      port: 18_080,
      organizationNpi: '1245319599',
      organizationName: 'Synthetic Clinic A',
      tls: false,
      logger,
    });
    const secure = advertiser({
      instanceName: tlsName,
      port: 18_443,
      organizationNpi: '1679576722',
      organizationName: 'Synthetic Clinic B',
      tls: true,
      logger,
    });
    await Promise.all([plain.start(), secure.start()]);

    const list = await browseUntil((l) => byName(l, plainName) !== undefined && byName(l, tlsName) !== undefined);
    const a = byName(list, plainName);
    const b = byName(list, tlsName);
    assert.ok(a && b);
    assert.equal(a.fqdn, fqdnOf(plainName));
    assert.equal(b.fqdn, fqdnOf(tlsName));
    assert.deepEqual(a.txt, { npi: '1245319599', name: 'Synthetic Clinic A', ver: '1', path: '/ws/handshake', tls: '0' });
    assert.deepEqual(b.txt, { npi: '1679576722', name: 'Synthetic Clinic B', ver: '1', path: '/ws/handshake', tls: '1' });
    assert.equal(a.port, 18_080);
    assert.equal(a.npi, '1245319599');
    assert.equal(a.organizationName, 'Synthetic Clinic A');
    assert.equal(a.protocolVersion, '1');
    assert.equal(a.tls, false);
    assert.equal(b.tls, true);
    assert.match(a.host, /\.local$/);
    // Pinned to loopback: only loopback addresses are advertised, never the machine's LAN address.
    assert.ok(a.addresses.includes('127.0.0.1'), `addresses: ${a.addresses.join(', ')}`);
    assert.ok(
      a.addresses.every((address) => address.startsWith('127.') || address === '::1'),
      a.addresses.join(', '),
    );
    assert.equal(a.handshakeUrl, 'ws://127.0.0.1:18080/ws/handshake');
    assert.equal(b.handshakeUrl, 'wss://127.0.0.1:18443/ws/handshake');

    // On the wire, read by a bare socket: the PTR browsers ask for, the type enumeration, and the
    // TXT strings in order.
    const records = recordsOf(wire.packets);
    const ptr = records.find((r) => r.type === 'PTR' && r.data === fqdnOf(plainName));
    assert.equal(ptr?.name, SERVICE_TYPE);
    assert.ok((ptr?.ttl ?? 0) > 0);
    assert.ok(records.some((r) => r.type === 'PTR' && r.name === '_services._dns-sd._udp.local' && r.data === SERVICE_TYPE));
    const srv = records.find((r) => r.type === 'SRV' && r.name === fqdnOf(plainName));
    assert.equal((srv?.data as { port?: number } | undefined)?.port, 18_080);
    const txt = records.find((r) => r.type === 'TXT' && r.name === fqdnOf(plainName));
    assert.deepEqual(txtStrings(txt), ['npi=1245319599', 'name=Synthetic Clinic A', 'ver=1', 'path=/ws/handshake', 'tls=0']);
    assert.deepEqual(txtStrings(records.find((r) => r.type === 'TXT' && r.name === fqdnOf(tlsName))).at(-1), 'tls=1');
    assert.ok(!JSON.stringify(records).includes('_careagentneuron'), 'the old 15-character type is gone');

    const advertising = logs.filter((e) => e.level === 'info' && e.msg?.includes('advertising the Neuron'));
    assert.equal(advertising.length, 2);
    assert.equal((advertising[0]?.obj as { serviceType?: string } | undefined)?.serviceType, '_careagent-neuron._tcp');
  });

  it('probes before announcing, renames a second Neuron that asks for a taken name, and logs the new name', async () => {
    const from = wire.packets.length;
    const twin = advertiser({
      instanceName: plainName,
      port: 18_081,
      organizationNpi: '1376841239',
      organizationName: 'Synthetic Clinic C',
      tls: false,
      logger,
    });
    await twin.start();
    const renamed = `${plainName} (2)`;
    assert.equal(twin.instanceName, renamed);
    const warning = logs.find((e) => e.level === 'warn' && (e.obj as { instanceName?: string }).instanceName === renamed);
    assert.ok(warning, 'a warning names the new instance name');
    assert.equal((warning.obj as { requestedName?: string }).requestedName, plainName);

    const seen = wire.packets.slice(from);
    // The probe: a query for the requested name carrying the records it proposes (port 18081).
    const probe = seen.find((p) => p.type === 'query' && (p.questions ?? []).some((q) => q.name === fqdnOf(plainName) && q.type === 'ANY'));
    assert.ok(probe, 'the twin probed the requested name');
    assert.ok((probe.authorities ?? []).some((r) => r.type === 'SRV' && (r.data as { port?: number }).port === 18_081));
    // Losing the name must not send goodbyes for it: those would make browsers drop the first Neuron.
    const forTakenName = (r: WireRecord) => r.name === fqdnOf(plainName) || r.data === fqdnOf(plainName);
    assert.ok(!recordsOf(seen).some((r) => r.ttl === 0 && forTakenName(r)), 'no goodbye for the taken name');

    const list = await browseUntil((l) => byName(l, renamed) !== undefined && byName(l, plainName) !== undefined);
    assert.equal(byName(list, renamed)?.npi, '1376841239');
    assert.equal(byName(list, renamed)?.port, 18_081);
    assert.equal(byName(list, plainName)?.npi, '1245319599');
    assert.notEqual(byName(list, renamed)?.host, byName(list, plainName)?.host, 'the host name is renamed with the instance');
  });

  it('settles two Neurons probing for the same name at the same moment: one keeps it, the other is renamed', async () => {
    const name = `Neuron Test ${RUN} C`;
    const left = advertiser({
      instanceName: name,
      port: 18_083,
      organizationNpi: '1234567893',
      organizationName: 'Synthetic Clinic E',
      tls: false,
      logger,
    });
    const right = advertiser({
      instanceName: name,
      port: 18_084,
      organizationNpi: '1649218926',
      organizationName: 'Synthetic Clinic F',
      tls: false,
      logger,
    });
    await Promise.all([left.start(), right.start()]);
    assert.deepEqual([left.instanceName, right.instanceName].sort(), [name, `${name} (2)`]);
    await Promise.all([left.stop(), right.stop()]);
  });

  it('probes again and renames when another device later answers for its name with other data', async () => {
    const entries: LogEntry[] = [];
    const name = `Neuron Test ${RUN} E`;
    const late = advertiser({
      instanceName: name,
      port: 18_085,
      organizationNpi: '1982743191',
      organizationName: 'Synthetic Clinic G',
      tls: false,
      logger: recordingLogger(entries),
    });
    await late.start();
    assert.equal(late.instanceName, name);
    const rogue = await openWire();
    try {
      const claim: WireRecord[] = [
        { name: fqdnOf(name), type: 'SRV', ttl: 120, data: { port: 9, target: 'another-device.local' } },
        { name: fqdnOf(name), type: 'TXT', ttl: 4_500, data: ['npi=1003000126'] },
      ];
      rogue.register(claim); // it also answers the probes that follow
      await rogue.respond({ answers: claim });
      await eventually(() => late.instanceName === `${name} (2)`, FIND_DEADLINE_MS, `still ${late.instanceName}`);
      assert.ok(entries.some((e) => e.level === 'warn' && e.msg?.includes('probing again')));
      assert.ok(entries.some((e) => e.level === 'warn' && (e.obj as { instanceName?: string }).instanceName === `${name} (2)`));
      await eventually(
        () =>
          entries.some(
            (e) =>
              e.level === 'info' && (e.obj as { instanceName?: string }).instanceName === `${name} (2)` && e.msg?.includes('advertising'),
          ),
        FIND_DEADLINE_MS,
        'not announced under the new name',
      );
    } finally {
      await rogue.close();
      await late.stop();
    }
  });

  it('sends goodbye packets on stop, so a watching browser sees the Neuron leave at once', async () => {
    const seenUp = new Set<string>();
    let resolveUp: () => void = () => {};
    const up = new Promise<void>((resolve) => {
      resolveUp = resolve;
    });
    let resolveDown: () => void = () => {};
    const down = new Promise<void>((resolve) => {
      resolveDown = resolve;
    });
    let watchError: Error | undefined;
    const watcher = watchNeurons(
      { interface: LOOPBACK },
      {
        up: (n) => {
          seenUp.add(n.name);
          if (n.name === plainName) resolveUp();
        },
        down: (n) => {
          if (n.name === plainName) resolveDown();
        },
        error: (e) => {
          watchError = e;
        },
      },
    );
    try {
      await withDeadline(up, FIND_DEADLINE_MS, 'the watcher never saw the Neuron');
      const from = wire.packets.length;
      await plain.stop();
      // The records' TTL is 2 minutes or more (RFC 6762 section 10), so only a goodbye can make
      // the Neuron leave within seconds.
      await withDeadline(down, GOODBYE_DEADLINE_MS, 'no goodbye seen after stop()');
      assert.equal(watchError, undefined);
      assert.ok(logs.some((e) => e.level === 'info' && e.msg?.includes('stopped advertising')));
      // stop() resolved only after the goodbye left the socket: PTR, SRV and TXT with TTL 0.
      // Other Neurons on this machine (parallel test files) may say goodbye too: look at ours.
      const goodbye = () =>
        recordsOf(wire.packets.slice(from)).filter((r) => r.ttl === 0 && (r.name === fqdnOf(plainName) || r.data === fqdnOf(plainName)));
      await eventually(() => goodbye().length >= 3, WIRE_DEADLINE_MS, 'no TTL 0 records on the wire');
      const kinds = goodbye().map((r) => `${r.type} ${r.name}`);
      assert.ok(kinds.includes(`PTR ${SERVICE_TYPE}`), kinds.join(', '));
      assert.ok(kinds.includes(`SRV ${fqdnOf(plainName)}`), kinds.join(', '));
      assert.ok(kinds.includes(`TXT ${fqdnOf(plainName)}`), kinds.join(', '));
      const enumeration = recordsOf(wire.packets.slice(from)).filter((r) => r.name === '_services._dns-sd._udp.local' && r.ttl === 0);
      assert.deepEqual(enumeration, [], 'the shared type enumeration gets no goodbye');
    } finally {
      await watcher.stop();
    }
  });

  it('stop() while the name is still being probed cancels quietly', async () => {
    const entries: LogEntry[] = [];
    const name = `Neuron Test ${RUN} D`;
    const from = wire.packets.length;
    const early = advertiser({
      instanceName: name,
      port: 18_082,
      organizationNpi: '1003000126',
      organizationName: 'Synthetic Clinic D',
      tls: false,
      logger: recordingLogger(entries),
    });
    const starting = early.start();
    await early.stop();
    await starting;
    assert.ok(!entries.some((e) => e.msg?.includes('advertising the Neuron')), 'never announced');
    assert.ok(!entries.some((e) => e.level === 'error'));
    assert.ok(entries.some((e) => e.msg?.includes('stopped before the name was announced')));
    await new Promise((resolve) => setTimeout(resolve, 300)); // anything still in flight on loopback
    assert.ok(!recordsOf(wire.packets.slice(from)).some((r) => r.name === fqdnOf(name)), 'nothing announced on the wire');
  });
});

describe('discovery options', () => {
  const logger = recordingLogger([]);
  const valid = { instanceName: 'X', port: 1, organizationNpi: '1245319599', organizationName: 'X', tls: false, logger };

  it('refuses an invalid port or NPI, and an address no interface holds', () => {
    const refused = (options: DiscoveryAdvertiserOptions) =>
      assert.throws(
        () => createDiscoveryAdvertiser(options),
        (e) => isNeuronError(e) && e.code === 'VALIDATION_FAILED',
      );
    refused({ ...valid, port: 0 });
    refused({ ...valid, port: 65_536 });
    refused({ ...valid, organizationNpi: '12345' });
    refused({ ...valid, interfaces: ['198.51.100.254'] }); // TEST-NET-2 (RFC 5737): documentation only, never assigned
  });

  it('refuses a browse timeout out of range and an unknown interface', async () => {
    const refused = (e: unknown) => isNeuronError(e) && e.code === 'VALIDATION_FAILED';
    await assert.rejects(browseNeurons({ timeoutMs: 0 }), refused);
    await assert.rejects(browseNeurons({ timeoutMs: 3_600_000 }), refused);
    await assert.rejects(browseNeurons({ timeoutMs: 100, interface: 'no-such-interface0' }), refused);
  });
});

async function withDeadline(promise: Promise<void>, ms: number, message: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
