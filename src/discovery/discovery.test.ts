/**
 * Real mDNS on the loopback interface: the advertiser (ciao) and the browser (bonjour-service)
 * exchange actual multicast packets on 127.0.0.1. Both are pinned to loopback with the
 * `interfaces` / `interface` options, so nothing is sent on any other network. See
 * docs/discovery.md ("How the test network works").
 */
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, describe, it } from 'node:test';
import { isNeuronError } from '../errors/index.ts';
import {
  browseNeurons,
  createDiscoveryAdvertiser,
  watchNeurons,
  type DiscoveredNeuron,
  type DiscoveryAdvertiser,
  type DiscoveryAdvertiserOptions,
  type DiscoveryLogger,
} from './index.ts';

// The loopback interface's name differs by system (`lo` on Linux, `lo0` on macOS).
const LOOPBACK =
  Object.entries(networkInterfaces()).find(([, infos]) => (infos ?? []).some((i) => i.internal && i.family === 'IPv4'))?.[0] ??
  'lo';
// Unique per run, so parallel runs on one machine do not see each other's Neurons as their own.
const RUN = `${process.pid}-${Date.now().toString(36)}`;
// Generous deadlines: probing alone takes about 0.75 s (RFC 6762 section 8.1: three probes 250 ms
// apart) and a renamed instance probes again after a one-second back-off.
const FIND_DEADLINE_MS = 8_000;
const BROWSE_ROUND_MS = 1_500; // one browse round: the first answer arrives within ~0.5 s of the query
const GOODBYE_DEADLINE_MS = 4_000;

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

describe('discovery over real mDNS on loopback', () => {
  after(async () => {
    await Promise.all(started.map((a) => a.stop()));
  });

  const logs: LogEntry[] = [];
  const logger = recordingLogger(logs);
  const plainName = `Neuron Test ${RUN} A`;
  const tlsName = `Neuron Test ${RUN} B`;
  let plain: DiscoveryAdvertiser;

  it('advertises and a browser finds each Neuron with its TXT record and handshake URL', async () => {
    plain = advertiser({ instanceName: plainName, port: 18_080, organizationNpi: '1245319599', organizationName: 'Synthetic Clinic A', tls: false, logger });
    const secure = advertiser({ instanceName: tlsName, port: 18_443, organizationNpi: '1679576722', organizationName: 'Synthetic Clinic B', tls: true, logger });
    await Promise.all([plain.start(), secure.start()]);

    const list = await browseUntil((l) => byName(l, plainName) !== undefined && byName(l, tlsName) !== undefined);
    const a = byName(list, plainName);
    const b = byName(list, tlsName);
    assert.ok(a && b);
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
    assert.ok(a.addresses.every((address) => address.startsWith('127.') || address === '::1'), a.addresses.join(', '));
    assert.equal(a.handshakeUrl, 'ws://127.0.0.1:18080/ws/handshake');
    assert.equal(b.handshakeUrl, 'wss://127.0.0.1:18443/ws/handshake');

    const advertising = logs.filter((e) => e.level === 'info' && e.msg?.includes('advertising the Neuron'));
    assert.equal(advertising.length, 2);
  });

  it('renames a second Neuron that asks for a taken name, and logs the new name', async () => {
    const twin = advertiser({ instanceName: plainName, port: 18_081, organizationNpi: '1376841239', organizationName: 'Synthetic Clinic C', tls: false, logger });
    await twin.start();
    const renamed = `${plainName} (2)`;
    assert.equal(twin.instanceName, renamed);
    const warning = logs.find((e) => e.level === 'warn' && (e.obj as { instanceName?: string }).instanceName === renamed);
    assert.ok(warning, 'a warning names the new instance name');
    assert.equal((warning.obj as { requestedName?: string }).requestedName, plainName);

    const list = await browseUntil((l) => byName(l, renamed) !== undefined && byName(l, plainName) !== undefined);
    assert.equal(byName(list, renamed)?.npi, '1376841239');
    assert.equal(byName(list, renamed)?.port, 18_081);
    assert.equal(byName(list, plainName)?.npi, '1245319599');
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
      await plain.stop();
      // The records' TTL is 2 minutes or more (RFC 6762 section 10), so only a goodbye can make
      // the Neuron leave within seconds.
      await withDeadline(down, GOODBYE_DEADLINE_MS, 'no goodbye seen after stop()');
      assert.equal(watchError, undefined);
      assert.ok(logs.some((e) => e.level === 'info' && e.msg?.includes('stopped advertising')));
    } finally {
      await watcher.stop();
    }
  });

  it('stop() while the name is still being probed cancels quietly', async () => {
    const entries: LogEntry[] = [];
    const early = advertiser({ instanceName: `Neuron Test ${RUN} D`, port: 18_082, organizationNpi: '1003000126', organizationName: 'Synthetic Clinic D', tls: false, logger: recordingLogger(entries) });
    const starting = early.start();
    await early.stop();
    await starting;
    assert.ok(!entries.some((e) => e.msg?.includes('advertising the Neuron')), 'never announced');
    assert.ok(!entries.some((e) => e.level === 'error'));
  });
});

describe('discovery options', () => {
  const logger = recordingLogger([]);
  const valid = { instanceName: 'X', port: 1, organizationNpi: '1245319599', organizationName: 'X', tls: false, logger };

  it('refuses an invalid port or NPI, and an address no interface holds', () => {
    const refused = (options: DiscoveryAdvertiserOptions) =>
      assert.throws(() => createDiscoveryAdvertiser(options), (e) => isNeuronError(e) && e.code === 'VALIDATION_FAILED');
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
