/**
 * The client address behind every per-address limit: X-Forwarded-For believed only from
 * server.trusted_proxies, read from the right; IPv4-mapped addresses written as IPv4; IPv6
 * clients counted by their /64. Real requests over real sockets to a plain HTTP server that
 * answers with what `ClientAddress.of` saw.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createClientAddress, limitKey, normalizeAddress, type ClientAddress } from './client-address.ts';

let server: Server;
let port: number;
let resolver: ClientAddress = createClientAddress([]);

before(async () => {
  server = createServer((req, res) => res.end(JSON.stringify({ address: resolver.of(req), key: resolver.limitKeyOf(req) })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** What the server saw for a request with these headers (raw header lines, so duplicates stay). */
function seen(headers: Array<[string, string]>): Promise<{ address: string; key: string }> {
  return new Promise((resolve, reject) => {
    // Raw [name, value] pairs, so a header can be sent twice; Node adds no Host header to those.
    const raw = [['host', `127.0.0.1:${port}`], ...headers].flat();
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', headers: raw as unknown as Record<string, string> });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(JSON.parse(body) as { address: string; key: string }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('X-Forwarded-For over real sockets', () => {
  test('trusting nobody (the default), the header is ignored: the client is the direct peer', async () => {
    resolver = createClientAddress([]);
    assert.deepEqual(await seen([['x-forwarded-for', '203.0.113.7']]), { address: '127.0.0.1', key: '127.0.0.1' });
  });

  test('a peer that is not in the list is not believed, even when others are', async () => {
    resolver = createClientAddress(['10.0.0.0/8', '2001:db8::/32']);
    assert.equal((await seen([['x-forwarded-for', '203.0.113.7']])).address, '127.0.0.1');
  });

  test('from a trusted peer, the nearest address that is not a trusted proxy is the client', async () => {
    resolver = createClientAddress(['127.0.0.1']);
    assert.equal((await seen([['x-forwarded-for', '203.0.113.7']])).address, '203.0.113.7');
    assert.equal((await seen([])).address, '127.0.0.1', 'no header: the peer itself');
    // A client that sends its own X-Forwarded-For only adds entries to the left of what the proxy appends.
    assert.equal((await seen([['x-forwarded-for', '198.51.100.1, 203.0.113.7']])).address, '203.0.113.7');
    // Two header lines are one list.
    assert.equal(
      (
        await seen([
          ['x-forwarded-for', '198.51.100.1'],
          ['x-forwarded-for', '203.0.113.7'],
        ])
      ).address,
      '203.0.113.7',
    );
  });

  test('a chain of trusted proxies is walked until the first untrusted hop', async () => {
    resolver = createClientAddress(['loopback', '10.0.0.0/8']);
    assert.equal((await seen([['x-forwarded-for', '198.51.100.1, 203.0.113.7, 10.1.2.3']])).address, '203.0.113.7');
  });

  test('a trusted proxy that forwards something other than an address: the proxy itself is the client', async () => {
    resolver = createClientAddress(['127.0.0.1']);
    assert.equal((await seen([['x-forwarded-for', 'not-an-address']])).address, '127.0.0.1');
    assert.equal((await seen([['x-forwarded-for', `${'9'.repeat(2_000)}`]])).address, '127.0.0.1');
  });

  test('IPv6 clients are counted by their /64', async () => {
    resolver = createClientAddress(['127.0.0.1']);
    assert.deepEqual(await seen([['x-forwarded-for', '2001:db8:1:2::5']]), { address: '2001:db8:1:2::5', key: '2001:db8:1:2::/64' });
    assert.deepEqual(await seen([['x-forwarded-for', '::ffff:203.0.113.7']]), { address: '203.0.113.7', key: '203.0.113.7' });
  });
});

test('limitKey: IPv4 as is, IPv6 by /64 prefix, IPv4-mapped as IPv4', () => {
  assert.equal(limitKey('192.0.2.1'), '192.0.2.1');
  assert.equal(limitKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(limitKey('2001:db8:1:2::1'), limitKey('2001:0db8:0001:0002:ffff::9'));
  assert.notEqual(limitKey('2001:db8:1:2::1'), limitKey('2001:db8:1:3::1'));
  assert.equal(limitKey('::1'), '0:0:0:0::/64');
  assert.equal(limitKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(limitKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(limitKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  assert.equal(limitKey('unknown'), 'unknown');
  assert.equal(normalizeAddress('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(normalizeAddress('2001:db8::1'), '2001:db8::1');
});

test('an entry of server.trusted_proxies that is not an address or range is refused at start, naming the option', () => {
  assert.throws(() => createClientAddress(['proxy.example']), /server\.trusted_proxies: "proxy\.example" is not an IP address/);
  assert.throws(() => createClientAddress(['10.0.0.0/33']), /server\.trusted_proxies: "10\.0\.0\.0\/33": invalid range/);
  assert.throws(() => createClientAddress(['999.1.1.1']), /server\.trusted_proxies/);
  assert.doesNotThrow(() => createClientAddress(['loopback', 'uniquelocal', '192.0.2.10', '2001:db8::/32', '10.0.0.0/255.0.0.0']));
});
