import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyAddress,
  embeddedIpv4,
  OutboundPolicy,
  outboundSettingsProblems,
  parseIpAddress,
  type OutboundSettings,
} from './policy.ts';

const DEFAULTS: OutboundSettings = { allow_loopback: false, allow_private: true, plain_http: 'private', allow: [] };

function classOf(text: string): string {
  const parsed = parseIpAddress(text);
  assert.ok(parsed, `${text} parses`);
  return classifyAddress(parsed);
}

describe('address classification', () => {
  test('IPv4 ranges', () => {
    const cases: Array<[string, string]> = [
      ['0.0.0.0', 'unspecified'],
      ['0.1.2.3', 'unspecified'],
      ['127.0.0.1', 'loopback'],
      ['127.255.255.254', 'loopback'],
      ['169.254.169.254', 'link_local'],
      ['169.254.0.1', 'link_local'],
      ['224.0.0.251', 'multicast'],
      ['239.255.255.250', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['240.0.0.1', 'reserved'],
      ['10.0.0.1', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['172.32.0.1', 'public'],
      ['172.15.255.255', 'public'],
      ['192.168.1.10', 'private'],
      ['100.64.0.1', 'private'],
      ['100.127.255.255', 'private'],
      ['100.128.0.1', 'public'],
      ['8.8.8.8', 'public'],
      ['203.0.113.7', 'public'],
    ];
    for (const [address, expected] of cases) assert.equal(classOf(address), expected, address);
  });

  test('IPv6 ranges', () => {
    const cases: Array<[string, string]> = [
      ['::', 'unspecified'],
      ['::1', 'loopback'],
      ['0:0:0:0:0:0:0:1', 'loopback'],
      ['fe80::1', 'link_local'],
      ['febf:ffff::1', 'link_local'],
      ['fe80::1%eth0', 'link_local'],
      ['ff02::1', 'multicast'],
      ['fc00::1', 'private'],
      ['fd12:3456:789a::1', 'private'],
      ['fec0::1', 'private'],
      ['2001:db8::1', 'public'],
      ['2606:4700:4700::1111', 'public'],
      ['[::1]', 'loopback'],
    ];
    for (const [address, expected] of cases) assert.equal(classOf(address), expected, address);
  });

  test('IPv4-mapped, IPv4-compatible and NAT64 IPv6 addresses are classified by their IPv4 address', () => {
    const cases: Array<[string, string]> = [
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['0:0:0:0:0:ffff:7f00:0001', 'loopback'],
      ['::ffff:169.254.169.254', 'link_local'],
      ['::ffff:a9fe:a9fe', 'link_local'],
      ['::ffff:0.0.0.0', 'unspecified'],
      ['::ffff:10.1.2.3', 'private'],
      ['::ffff:192.168.0.1', 'private'],
      ['::ffff:8.8.8.8', 'public'],
      ['::127.0.0.1', 'loopback'],
      ['64:ff9b::169.254.169.254', 'link_local'],
      ['64:ff9b::7f00:1', 'loopback'],
      ['64:ff9b::808:808', 'public'],
    ];
    for (const [address, expected] of cases) assert.equal(classOf(address), expected, address);
    const mapped = embeddedIpv4(parseIpAddress('::ffff:10.0.0.7')!);
    assert.equal(mapped.version, 4);
    assert.deepEqual([...mapped.bytes], [10, 0, 0, 7]);
  });

  test('anything that is not an address does not parse', () => {
    for (const text of [
      '',
      'localhost',
      'example.org',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '01.2.3.4',
      '1.2.3.4/8',
      '::ffff:1.2.3',
      '1::2::3',
      '12345::',
      'g::1',
      '1:2:3:4:5:6:7:8:9',
      '::ffff:999.0.0.1',
    ]) {
      assert.equal(parseIpAddress(text), null, JSON.stringify(text));
    }
  });
});

describe('the outbound policy', () => {
  test('defaults: loopback refused, private allowed, never-legitimate classes refused, plain http only to private', () => {
    const policy = new OutboundPolicy(DEFAULTS);
    assert.match(policy.addressRefusal('127.0.0.1', 'localhost', 'https:') ?? '', /loopback.*outbound\.allow_loopback/);
    assert.match(policy.addressRefusal('::1', 'localhost', 'https:') ?? '', /loopback/);
    assert.equal(policy.addressRefusal('10.0.0.5', 'agent.clinic.lan', 'http:'), null);
    assert.equal(policy.addressRefusal('fd00::5', 'agent.clinic.lan', 'https:'), null);
    assert.equal(policy.addressRefusal('203.0.113.7', 'hooks.example.org', 'https:'), null);
    assert.match(policy.addressRefusal('203.0.113.7', 'hooks.example.org', 'http:') ?? '', /plain http.*outbound\.plain_http/);
    for (const address of [
      '169.254.169.254',
      '0.0.0.0',
      '::',
      'fe80::1',
      '224.0.0.1',
      'ff02::1',
      '255.255.255.255',
      '240.1.2.3',
      '::ffff:169.254.169.254',
    ]) {
      assert.match(policy.addressRefusal(address, 'x.example', 'https:') ?? '', /never a delivery target/, address);
    }
  });

  test('6to4 (2002::/16) and local-use NAT64 (64:ff9b:1::/48) are judged by the IPv4 address they carry', () => {
    const cases: Array<[string, string]> = [
      // RFC 3056: 2002:AABB:CCDD:: carries AA.BB.CC.DD.
      ['2002:7f00:1::', 'loopback'],
      ['2002:7f00:1:1:2:3:4:5', 'loopback'],
      ['2002:a9fe:a9fe::1', 'link_local'],
      ['2002:a00:1::', 'private'],
      ['2002:c0a8:101::', 'private'],
      ['2002:808:808::1', 'public'],
      // RFC 8215 with a /96 translator prefix: the IPv4 address in the last 32 bits.
      ['64:ff9b:1::7f00:1', 'loopback'],
      ['64:ff9b:1::127.0.0.1', 'loopback'],
      ['64:ff9b:1::a9fe:a9fe', 'link_local'],
      ['64:ff9b:1::a00:1', 'private'],
      ['64:ff9b:1::808:808', 'public'],
      ['64:ff9b:1:abcd:0:1:808:808', 'public'],
      // RFC 8215 with a /48 translator prefix (RFC 6052 layout: bits 48-63, then 72-87).
      // 127.0.0.1 in the /48 layout; its /64 reading is 0.1.0.0, so it is refused outright.
      ['64:ff9b:1:7f00:0:100::', 'unspecified'],
      ['64:ff9b:1:a9fe:a9:fe00::', 'link_local'],
      ['64:ff9b:1:808:8:800::', 'public'],
      // /56 and /64 layouts.
      ['64:ff9b:1:0:7f:0:100:0', 'loopback'],
      ['64:ff9b:1:a:1:101::', 'private'],
      // Readings that disagree: the strictest wins (here the /64 reading 0.0.1.0, unspecified).
      ['64:ff9b:1:a:0:1::', 'unspecified'],
    ];
    for (const [address, expected] of cases) assert.equal(classOf(address), expected, address);
    // Outside the prefixes nothing changes: 64:ff9b:2:: and 2003:: are ordinary public addresses.
    assert.equal(classOf('64:ff9b:2::7f00:1'), 'public');
    assert.equal(classOf('2003:7f00:1::'), 'public');
    const policy = new OutboundPolicy({ ...DEFAULTS, allow_private: false });
    assert.match(policy.addressRefusal('2002:7f00:1::', 'x', 'https:') ?? '', /loopback/);
    assert.match(policy.addressRefusal('64:ff9b:1::a9fe:a9fe', 'x', 'https:') ?? '', /never a delivery target/);
    assert.match(policy.urlProblem('https://[2002:a00:1::]/hook') ?? '', /private/);
    assert.equal(policy.addressRefusal('2002:808:808::1', 'x', 'https:'), null);
  });

  test('IPv4-mapped loopback is refused like 127.0.0.1', () => {
    const policy = new OutboundPolicy(DEFAULTS);
    assert.match(policy.addressRefusal('::ffff:127.0.0.1', '::ffff:127.0.0.1', 'https:') ?? '', /loopback/);
    assert.match(policy.urlProblem('http://[::ffff:127.0.0.1]:8080/notices') ?? '', /loopback/);
  });

  test('settings open loopback, close private ranges and plain http', () => {
    const open = new OutboundPolicy({ ...DEFAULTS, allow_loopback: true });
    assert.equal(open.addressRefusal('127.0.0.1', 'localhost', 'http:'), null);
    assert.match(open.addressRefusal('169.254.169.254', 'x', 'http:') ?? '', /never/, 'nothing opens link-local');

    const closed = new OutboundPolicy({ ...DEFAULTS, allow_private: false, plain_http: 'never' });
    assert.match(closed.addressRefusal('192.168.1.2', 'agent.lan', 'https:') ?? '', /private.*outbound\.allow_private/);
    assert.match(closed.addressRefusal('::ffff:192.168.1.2', 'agent.lan', 'https:') ?? '', /private/);
    assert.match(closed.addressRefusal('203.0.113.7', 'hooks.example.org', 'http:') ?? '', /"never"/);
    assert.match(closed.urlProblem('http://hooks.example.org/x') ?? '', /plain http/);

    const always = new OutboundPolicy({ ...DEFAULTS, plain_http: 'always' });
    assert.equal(always.addressRefusal('203.0.113.7', 'hooks.example.org', 'http:'), null);
  });

  test('the allow-list opens hosts, addresses and ranges, but never the always-refused classes', () => {
    const policy = new OutboundPolicy({
      ...DEFAULTS,
      allow_private: false,
      plain_http: 'never',
      allow: ['127.0.0.1', '10.20.0.0/16', 'agent.clinic.lan', '::ffff:192.168.7.0/120', '169.254.169.254'],
    });
    assert.equal(policy.addressRefusal('127.0.0.1', '127.0.0.1', 'http:'), null);
    assert.equal(policy.addressRefusal('::ffff:127.0.0.1', 'x', 'https:'), null, 'a mapped address matches its IPv4 entry');
    assert.match(policy.addressRefusal('127.0.0.2', 'x', 'https:') ?? '', /loopback/);
    assert.equal(policy.addressRefusal('10.20.3.4', 'x', 'http:'), null);
    assert.match(policy.addressRefusal('10.21.3.4', 'x', 'https:') ?? '', /private/);
    assert.equal(policy.addressRefusal('192.168.7.9', 'x', 'https:'), null, 'a range written as mapped IPv6 is its IPv4 range');
    assert.equal(policy.addressRefusal('192.168.1.10', 'AGENT.clinic.lan.', 'http:'), null, 'host names match case-insensitively');
    assert.match(policy.addressRefusal('169.254.169.254', '169.254.169.254', 'https:') ?? '', /never/);
    assert.equal(policy.urlProblem('http://agent.clinic.lan/notices'), null);
  });

  test('URLs at acceptance: literal addresses and localhost names are judged, other names wait for delivery', () => {
    const policy = new OutboundPolicy(DEFAULTS);
    assert.match(
      policy.urlProblem('http://169.254.169.254/latest/meta-data/') ?? '',
      /^names 169\.254\.169\.254, which is a link-local address/,
    );
    assert.match(policy.urlProblem('https://127.0.0.1:8600/') ?? '', /loopback/);
    assert.match(policy.urlProblem('https://2130706433/') ?? '', /127\.0\.0\.1.*loopback/, 'the URL parser normalises numeric hosts');
    assert.match(policy.urlProblem('https://0x7f.1/') ?? '', /loopback/);
    assert.match(policy.urlProblem('https://[::1]/') ?? '', /loopback/);
    assert.match(policy.urlProblem('https://[fe80::1]/') ?? '', /link-local/);
    assert.match(policy.urlProblem('https://0.0.0.0/') ?? '', /unspecified/);
    assert.match(policy.urlProblem('http://localhost:8700/notices') ?? '', /localhost.*loopback/);
    assert.match(policy.urlProblem('https://api.localhost./') ?? '', /loopback/);
    assert.match(policy.urlProblem('http://203.0.113.7/hook') ?? '', /plain http/);
    assert.equal(policy.urlProblem('http://192.168.1.20:8700/notices'), null);
    assert.equal(policy.urlProblem('https://203.0.113.7/hook'), null);
    assert.equal(policy.urlProblem('https://hooks.example.org/neuron'), null);
    assert.equal(policy.urlProblem('http://agent.clinic.lan/notices'), null, 'a name over http is judged by the address it resolves to');
  });

  test('settings problems name each bad allow-list entry', () => {
    assert.deepEqual(outboundSettingsProblems({ ...DEFAULTS, allow: ['10.0.0.0/8', 'fd00::/8', 'agent.lan', '127.0.0.1'] }), []);
    const problems = outboundSettingsProblems({
      ...DEFAULTS,
      allow: ['10.0.0.0/33', '10.0.0.300', 'not a host', '::1/129', 'http://x', 'ok.example', '10.1/8'],
    });
    assert.deepEqual(
      problems.map((p) => p.path),
      ['outbound.allow.0', 'outbound.allow.1', 'outbound.allow.2', 'outbound.allow.3', 'outbound.allow.4', 'outbound.allow.6'],
    );
    assert.throws(() => new OutboundPolicy({ ...DEFAULTS, allow: ['10.0.0.0/33'] }), /outbound\.allow\.0/);
  });
});
