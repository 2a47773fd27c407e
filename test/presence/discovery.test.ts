/**
 * A real Neuron with discovery enabled advertises itself over real mDNS on the loopback interface
 * (the approach of src/network/discovery/discovery.test.ts and docs/discovery.md: both ends pinned to
 * loopback, nothing sent on any other network), is found by `browseNeurons` and by the
 * `neuron discover` command, and says goodbye when stopped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { browseNeurons, watchNeurons } from '../../src/network/discovery/browser.ts';
import type { DiscoveredNeuron } from '../../src/network/discovery/index.ts';
import { ORG_NPI, cli, startNeuron, type Harness } from './harness.ts';

// The loopback interface's name differs by system (`lo` on Linux, `lo0` on macOS).
const LOOPBACK =
  Object.entries(networkInterfaces()).find(([, infos]) => (infos ?? []).some((i) => i.internal && i.family === 'IPv4'))?.[0] ?? 'lo';
// Unique per run, so parallel runs on one machine do not mistake each other's Neurons for this one.
const NAME = `Neuron Presence ${process.pid}-${Date.now().toString(36)}`;
// Probing takes about 0.75 s (RFC 6762 section 8.1); the deadlines only bound a failure.
const FIND_DEADLINE_MS = 10_000;
const BROWSE_ROUND_MS = 1_500;
const GOODBYE_DEADLINE_MS = 5_000;

async function browseUntilFound(): Promise<DiscoveredNeuron> {
  const deadline = Date.now() + FIND_DEADLINE_MS;
  let seen: DiscoveredNeuron[] = [];
  while (Date.now() < deadline) {
    seen = await browseNeurons({ timeoutMs: BROWSE_ROUND_MS, interface: LOOPBACK });
    const found = seen.find((neuron) => neuron.name === NAME);
    if (found) return found;
  }
  assert.fail(`not found within ${FIND_DEADLINE_MS} ms; saw: ${seen.map((n) => n.name).join(', ') || 'nothing'}`);
}

describe('local discovery of a running Neuron', () => {
  let h: Harness;

  before(async () => {
    h = await startNeuron(null, { discovery: { enabled: true, instance_name: NAME, interfaces: [LOOPBACK] } });
  });
  after(async () => h.cleanup());

  it('is found by browse with its TXT record, bound port and the handshake URL patients use', async () => {
    const found = await browseUntilFound();
    const { port } = h.neuron.address();
    assert.equal(found.port, port, 'the bound port, not the configured 0');
    // Exactly the service type patient CareAgents browse for.
    assert.equal(found.fqdn, `${NAME}._careagent-neuron._tcp.local`);
    assert.deepEqual(found.txt, { npi: ORG_NPI, name: 'Synthetic Family Practice', ver: '1', path: '/ws/handshake', tls: '0' });
    assert.equal(found.npi, ORG_NPI);
    assert.equal(found.tls, false);
    // The same handshake URL the Neuron registers: local patients use exactly the same handshake.
    assert.equal(found.handshakeUrl, h.neuron.address().handshakeUrl);
    assert.equal(h.neuron.presence.advertisedName, NAME);
  });

  it('is listed by `neuron discover --json`', async () => {
    const result = await cli(h.configFile, ['discover', '--json', '--timeout', '2s', '--interface', LOOPBACK]);
    assert.equal(result.code, 0, result.stderr);
    const listed = JSON.parse(result.stdout) as DiscoveredNeuron[];
    const mine = listed.find((neuron) => neuron.name === NAME);
    assert.ok(mine, `listed: ${listed.map((n) => n.name).join(', ')}`);
    assert.equal(mine.fqdn, `${NAME}._careagent-neuron._tcp.local`);
    assert.equal(mine.port, h.neuron.address().port);
    const human = await cli(h.configFile, ['discover', '--timeout', '2s', '--interface', LOOPBACK]);
    assert.match(human.stdout, new RegExp(`handshake +${h.neuron.address().handshakeUrl.replaceAll('/', '\\/').replaceAll('.', '\\.')}`));
    const bad = await cli(h.configFile, ['discover', '--timeout', '5m']);
    assert.equal(bad.code, 2);
  });

  it('sends goodbye packets when the Neuron stops, before anything else stops', async () => {
    let resolveUp: () => void = () => {};
    let resolveDown: () => void = () => {};
    const up = new Promise<void>((resolve) => (resolveUp = resolve));
    const down = new Promise<void>((resolve) => (resolveDown = resolve));
    const watcher = watchNeurons(
      { interface: LOOPBACK },
      {
        up: (neuron) => neuron.name === NAME && resolveUp(),
        down: (neuron) => neuron.name === NAME && resolveDown(),
      },
    );
    try {
      await withDeadline(up, FIND_DEADLINE_MS, 'the watcher never saw the Neuron');
      await h.neuron.stop();
      // Records live 2 minutes or more (RFC 6762 section 10): only a goodbye explains a quick "down".
      await withDeadline(down, GOODBYE_DEADLINE_MS, 'no goodbye after stop()');
      assert.ok(h.logs.some((line) => line.includes('stopped advertising (goodbye sent)')));
      const goodbye = h.logs.findIndex((line) => line.includes('stopped advertising (goodbye sent)'));
      const httpClosed = h.logs.findIndex((line) => line.includes('neuron stopped'));
      assert.ok(goodbye >= 0 && goodbye < httpClosed, 'mDNS leaves first');
    } finally {
      await watcher.stop();
    }
  });
});

async function withDeadline(promise: Promise<void>, ms: number, message: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a Neuron bound to loopback only', () => {
  it('starts no advertisement and says why in the log (no discovery.interfaces configured)', async () => {
    const h = await startNeuron(null, { discovery: { enabled: true, instance_name: `${NAME} loopback` } });
    try {
      assert.equal(h.neuron.presence.advertisedName, null, 'no advertiser was created');
      const lines = h.logs.map((line) => JSON.parse(line) as { level: number; msg: string; boundAddress?: string });
      const notice = lines.find((line) => line.msg.startsWith('mDNS: not advertised on the local network'));
      assert.ok(notice, `log lines: ${lines.map((line) => line.msg).join(' | ')}`);
      assert.equal(notice.level, 30, 'info');
      assert.equal(notice.boundAddress, '127.0.0.1');
      assert.match(notice.msg, /loopback address 127\.0\.0\.1 only/);
      assert.ok(
        !lines.some((line) => line.msg.startsWith('mDNS: probing') || line.msg.startsWith('mDNS: advertising')),
        'nothing probed or announced',
      );
    } finally {
      await h.cleanup();
    }
  });
});
