import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_INSTANCE_NAME,
  MAX_INSTANCE_NAME_BYTES,
  MAX_RENAME_NUMBER,
  NEURON_SERVICE_TYPE_LABEL,
  MAX_TXT_ENTRY_BYTES,
  buildTxtRecord,
  deriveHandshakeUrl,
  deriveHostname,
  formatDiscoveredNeurons,
  instanceNameFromFqdn,
  numberedHostLabel,
  numberedInstanceName,
  parseTxtStrings,
  sanitizeInstanceName,
  toDiscoveredNeuron,
  truncateUtf8,
} from './records.ts';

const bytes = (value: string) => Buffer.byteLength(value, 'utf8');

describe('discovery records', () => {
  it('uses exactly the service type CareAgents browse for', () => {
    assert.equal(NEURON_SERVICE_TYPE_LABEL, '_careagent-neuron._tcp');
  });

  it('numbers renamed instance and host names within one DNS label', () => {
    assert.equal(numberedInstanceName('Clinic', 1), 'Clinic');
    assert.equal(numberedInstanceName('Clinic', 2), 'Clinic (2)');
    assert.equal(numberedHostLabel('clinic', 1), 'clinic');
    assert.equal(numberedHostLabel('clinic', 3), 'clinic-3');
    const longest = sanitizeInstanceName('Ä'.repeat(100));
    assert.ok(bytes(numberedInstanceName(longest, MAX_RENAME_NUMBER)) <= 63);
    assert.ok(numberedHostLabel(deriveHostname('a'.repeat(100)), MAX_RENAME_NUMBER).length <= 63);
  });

  it('publishes npi, name, ver, path and tls in the TXT record', () => {
    assert.deepEqual(buildTxtRecord({ organizationNpi: '1245319599', organizationName: 'Synthetic Clinic', tls: true }), {
      npi: '1245319599',
      name: 'Synthetic Clinic',
      ver: '1',
      path: '/ws/handshake',
      tls: '1',
    });
    assert.equal(buildTxtRecord({ organizationNpi: '1245319599', organizationName: 'X', tls: false }).tls, '0');
  });

  it('keeps every TXT string within 255 bytes without splitting a character', () => {
    const txt = buildTxtRecord({ organizationNpi: '1245319599', organizationName: 'Ü'.repeat(300), tls: false });
    const entry = `name=${txt['name']}`;
    assert.ok(bytes(entry) <= MAX_TXT_ENTRY_BYTES);
    assert.match(txt['name'] ?? '', /^Ü+$/);
  });

  it('cuts UTF-8 at character boundaries', () => {
    assert.equal(truncateUtf8('aé€😀', 1), 'a');
    assert.equal(truncateUtf8('aé€😀', 3), 'aé');
    assert.equal(truncateUtf8('aé€😀', 6), 'aé€');
    assert.equal(truncateUtf8('aé€😀', 9), 'aé€');
    assert.equal(truncateUtf8('aé€😀', 10), 'aé€😀');
  });

  it('cleans instance names: no dots, no control or bidi characters, one DNS label with room for " (2)"', () => {
    assert.equal(sanitizeInstanceName("  St. Mary's\u0007 Clinic "), "St Mary's Clinic");
    assert.equal(sanitizeInstanceName('Clinic\u202eevil'), 'Clinic evil');
    assert.equal(sanitizeInstanceName(' . '), DEFAULT_INSTANCE_NAME);
    const long = sanitizeInstanceName('Ä'.repeat(100));
    assert.ok(bytes(long) <= MAX_INSTANCE_NAME_BYTES);
    assert.ok(bytes(`${long} (99)`) <= 63);
  });

  it('derives an ASCII host label from the instance name', () => {
    assert.equal(deriveHostname("St Mary's Clinic"), 'st-marys-clinic');
    assert.equal(deriveHostname('Clínica São José'), 'clinica-sao-jose');
    assert.equal(deriveHostname('東京'), 'neuron');
    assert.ok(deriveHostname('a'.repeat(100)).length <= 56);
  });

  it('reads TXT strings as RFC 6763 section 6 says', () => {
    const entries = ['NPI=1245319599', 'npi=1679576722', 'path=/a=b', 'flag', '=nokey', '', 'name=Zoë'].map((s) => Buffer.from(s, 'utf8'));
    assert.deepEqual(parseTxtStrings(entries), { npi: '1245319599', path: '/a=b', flag: '', name: 'Zoë' });
  });

  it('takes the instance name from the FQDN, undoing DNS escapes', () => {
    assert.equal(instanceNameFromFqdn('St\\. Mary\\\\s._careagent-neuron._tcp.local'), 'St. Mary\\s');
    assert.equal(instanceNameFromFqdn('Clinic (2)._CareAgent-Neuron._tcp.local.'), 'Clinic (2)');
    assert.equal(instanceNameFromFqdn('Printer._ipp._tcp.local'), null);
    // The 15-character spelling used before is a different service type.
    assert.equal(instanceNameFromFqdn('Clinic._careagentneuron._tcp.local'), null);
  });

  it('derives ws:// or wss:// handshake URLs from the first IPv4 address, else the host', () => {
    const txt = { tls: '0', path: '/ws/handshake' };
    assert.equal(
      deriveHandshakeUrl({ host: 'c.local', port: 8080, addresses: ['fe80::1', '10.0.0.5', '10.0.0.6'], txt }),
      'ws://10.0.0.5:8080/ws/handshake',
    );
    assert.equal(
      deriveHandshakeUrl({ host: 'c.local.', port: 8443, addresses: ['fe80::1'], txt: { tls: '1' } }),
      'wss://c.local:8443/ws/handshake',
    );
    // A path that is not a plain absolute path falls back to the standard one.
    assert.equal(deriveHandshakeUrl({ host: 'c.local', port: 1, addresses: [], txt: { path: 'x?y' } }), 'ws://c.local:1/ws/handshake');
    assert.equal(
      deriveHandshakeUrl({ host: 'c.local', port: 1, addresses: [], txt: { path: '/ws/handshake?x=1' } }),
      'ws://c.local:1/ws/handshake',
    );
    // Host names carrying URL syntax and impossible ports give no URL.
    assert.equal(deriveHandshakeUrl({ host: 'evil@c.local', port: 1, addresses: [], txt: {} }), null);
    assert.equal(deriveHandshakeUrl({ host: 'c.local/x', port: 1, addresses: [], txt: {} }), null);
    assert.equal(deriveHandshakeUrl({ host: 'c.local', port: 0, addresses: [], txt: {} }), null);
    assert.equal(deriveHandshakeUrl({ host: 'c.local', port: 70_000, addresses: [], txt: {} }), null);
  });

  it('turns a browsed service into a DiscoveredNeuron, or null when unusable', () => {
    const neuron = toDiscoveredNeuron({
      fqdn: 'Synthetic Clinic._careagent-neuron._tcp.local',
      name: 'Synthetic Clinic',
      host: 'synthetic-clinic.local',
      port: 8443,
      addresses: ['fe80::1', '10.0.0.5'],
      rawTxt: ['npi=1245319599', 'name=Synthetic Clinic', 'ver=1', 'path=/ws/handshake', 'tls=1'].map((s) => Buffer.from(s)),
      txt: { ignored: 'because rawTxt wins' },
    });
    assert.deepEqual(neuron, {
      name: 'Synthetic Clinic',
      fqdn: 'Synthetic Clinic._careagent-neuron._tcp.local',
      host: 'synthetic-clinic.local',
      port: 8443,
      addresses: ['10.0.0.5', 'fe80::1'],
      txt: { npi: '1245319599', name: 'Synthetic Clinic', ver: '1', path: '/ws/handshake', tls: '1' },
      npi: '1245319599',
      organizationName: 'Synthetic Clinic',
      protocolVersion: '1',
      tls: true,
      handshakeUrl: 'wss://10.0.0.5:8443/ws/handshake',
    });
    assert.equal(toDiscoveredNeuron({ fqdn: 'x._careagent-neuron._tcp.local', host: 'x.local' }), null);
    assert.equal(toDiscoveredNeuron({}), null);
  });

  it('formats a listing for people, with network text made safe for a terminal', () => {
    assert.equal(formatDiscoveredNeurons([]), 'No Neurons found on the local network.');
    const neuron = toDiscoveredNeuron({
      fqdn: 'Bad\u001b[2J._careagent-neuron._tcp.local',
      host: 'bad.local',
      port: 80,
      addresses: ['10.0.0.7'],
      txt: { npi: '1679576722', name: 'Evil\u001b]0;x\u0007', ver: '2' },
    });
    assert.ok(neuron !== null);
    const text = formatDiscoveredNeurons([neuron]);
    assert.doesNotMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f]/);
    assert.match(text, /^Found 1 Neuron on the local network:/);
    assert.match(text, /handshake {5}ws:\/\/10\.0\.0\.7\/ws\/handshake/);
    assert.match(text, /protocol {6}2 \(not the version this Neuron speaks\)/);
  });
});
