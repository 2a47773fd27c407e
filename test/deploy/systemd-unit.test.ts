/**
 * deploy/neuron.service carries the settings the deployment depends on (issue 17, item 18). A
 * plain parse of the unit, no systemd needed; CI also runs `systemd-analyze verify` on it
 * (scripts/verify-systemd-unit.sh).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigSchema } from '../../src/foundation/config/schema.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const UNIT = path.join(root, 'deploy', 'neuron.service');

/** Section name -> key -> values (a key may repeat, as Environment= does). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current !== undefined && eq > 0, `not a key=value line inside a section: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(readFileSync(UNIT, 'utf8'));
const service = unit.get('Service') ?? new Map<string, string[]>();
const one = (key: string): string | undefined => service.get(key)?.at(-1);

describe('deploy/neuron.service', () => {
  it('starts bin/neuron.js with the same node flags as its shebang', () => {
    const shebang = readFileSync(path.join(root, 'bin', 'neuron.js'), 'utf8').split('\n')[0]!;
    const flags = shebang.replace(/^#!\/usr\/bin\/env -S node\s*/, '').trim();
    assert.match(flags, /--max-semi-space-size=2/);
    const execStart = one('ExecStart') ?? '';
    assert.match(execStart, /^\/usr\/bin\/node /);
    assert.equal(execStart, `/usr/bin/node ${flags} /opt/neuron/bin/neuron.js start`);
  });

  it('keeps its state (and configuration) in a systemd state directory, run by a dedicated user', () => {
    assert.equal(one('DynamicUser'), 'yes');
    assert.equal(one('StateDirectory'), 'neuron');
    assert.equal(one('WorkingDirectory'), '/var/lib/neuron');
    assert.ok(service.get('Environment')?.includes('NEURON_CONFIG=/var/lib/neuron/neuron.config.json'));
    assert.equal(one('User'), undefined, 'DynamicUser allocates the user');
  });

  it('stops with SIGTERM and waits longer than the Neuron’s own shutdown timeout', () => {
    assert.equal(one('KillSignal'), 'SIGTERM');
    assert.equal(one('Restart'), 'on-failure');
    const stopSeconds = Number(one('TimeoutStopSec'));
    const shutdownMs = (ConfigSchema.properties.server.properties.shutdown_timeout_ms as unknown as { default: number }).default;
    assert.ok(stopSeconds * 1000 > shutdownMs, `TimeoutStopSec=${stopSeconds} must exceed server.shutdown_timeout_ms (${shutdownMs} ms)`);
  });

  it('is hardened', () => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      CapabilityBoundingSet: '',
      LockPersonality: 'yes',
      RestrictSUIDSGID: 'yes',
      SystemCallFilter: '@system-service',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX AF_NETLINK',
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(one(key), value, key);
    // V8's JIT writes and then executes code: Node cannot run with this.
    assert.equal(one('MemoryDenyWriteExecute'), undefined);
    assert.deepEqual(unit.get('Install')?.get('WantedBy'), ['multi-user.target']);
  });
});
