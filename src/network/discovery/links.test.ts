/**
 * Which addresses mDNS publishes: only those the server's listener is bound to (issue 17, item 7).
 * Pure functions over a synthetic interface table (documentation addresses, RFC 5737 / RFC 3849).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { boundAddressesOf, isLoopbackAddress, notAdvertisedReason, selectLinks, type InterfaceTable } from './links.ts';

const TABLE: InterfaceTable = {
  lo: [
    { address: '127.0.0.1', internal: true },
    { address: '::1', internal: true },
  ],
  eth0: [
    { address: '192.0.2.10', internal: false },
    { address: '2001:db8::10', internal: false },
  ],
  wlan0: [{ address: '198.51.100.7', internal: false }],
  v6only: [{ address: '2001:db8::77', internal: false }],
};

function published(configured: string[], boundAddress: string | undefined): Record<string, string[]> {
  return Object.fromEntries(selectLinks(configured, boundAddress, TABLE).usable.map((link) => [link.name, link.addresses]));
}

describe('mDNS address selection by bound address', () => {
  it('bound to :: publishes every address of every interface with IPv4 (as before)', () => {
    assert.deepEqual(published([], '::'), { lo: ['127.0.0.1', '::1'], eth0: ['192.0.2.10', '2001:db8::10'], wlan0: ['198.51.100.7'] });
    assert.deepEqual(published([], undefined), published([], '::'));
  });

  it('bound to 0.0.0.0 publishes only IPv4 addresses (the listener does not answer on IPv6)', () => {
    assert.deepEqual(published([], '0.0.0.0'), { lo: ['127.0.0.1'], eth0: ['192.0.2.10'], wlan0: ['198.51.100.7'] });
  });

  it('respects discovery.interfaces on a wildcard bind', () => {
    assert.deepEqual(published(['eth0'], '::'), { eth0: ['192.0.2.10', '2001:db8::10'] });
  });

  it('bound to a specific address publishes only that address, on its own interface', () => {
    assert.deepEqual(published([], '192.0.2.10'), { eth0: ['192.0.2.10'] });
    assert.deepEqual(published([], '2001:DB8::10'.toLowerCase()), { eth0: ['2001:db8::10'] });
    const selection = selectLinks(['wlan0'], '192.0.2.10', TABLE);
    assert.deepEqual(selection.usable, []);
    assert.deepEqual(selection.notBound, ['wlan0'], 'a configured interface without the bound address is reported');
  });

  it('bound to loopback: nothing is advertised unless a loopback interface is configured', () => {
    for (const address of ['127.0.0.1', '::1', '127.0.0.2']) {
      assert.match(notAdvertisedReason(address, [], TABLE) ?? '', /loopback address .* only/);
      assert.match(notAdvertisedReason(address, ['eth0'], TABLE) ?? '', /loopback/);
    }
    assert.equal(notAdvertisedReason('127.0.0.1', ['lo'], TABLE), null, 'an explicit loopback interface (local discovery only)');
    assert.deepEqual(published(['lo'], '127.0.0.1'), { lo: ['127.0.0.1'] });
    for (const address of ['0.0.0.0', '::', '192.0.2.10', undefined]) assert.equal(notAdvertisedReason(address, [], TABLE), null);
  });

  it('recognises loopback addresses', () => {
    for (const address of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(address), true, address);
    for (const address of ['0.0.0.0', '::', '192.0.2.10', '2001:db8::1', '128.0.0.1'])
      assert.equal(isLoopbackAddress(address), false, address);
    assert.deepEqual(boundAddressesOf(['192.0.2.10', '2001:db8::10'], '0.0.0.0'), ['192.0.2.10']);
  });
});
