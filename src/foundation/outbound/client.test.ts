/**
 * The outbound client against a real receiver on 127.0.0.1: the policy is enforced on the address
 * a connection would use, so a name resolving to a refused address never reaches the receiver.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAfterEach, deferredReceiver, type Receiver } from '../../../test/helpers/providers.ts';
import { OutboundClient, outboundRefusal, OUTBOUND_REFUSED_CODE } from './client.ts';
import { OutboundPolicy, type OutboundSettings } from './policy.ts';

const DEFAULTS: OutboundSettings = { allow_loopback: false, allow_private: true, plain_http: 'private', allow: [] };

const defer = cleanupAfterEach();
const receiver = (): Promise<Receiver> => deferredReceiver(defer);

function client(settings: Partial<OutboundSettings>): OutboundClient {
  const c = new OutboundClient(new OutboundPolicy({ ...DEFAULTS, ...settings }));
  defer(() => c.close());
  return c;
}

const post = (c: OutboundClient, url: string): ReturnType<OutboundClient['fetch']> =>
  c.fetch(url, {
    method: 'POST',
    body: '{}',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });

async function refusalOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const refusal = outboundRefusal(error);
    assert.ok(refusal, `a policy refusal, not ${String(error)}`);
    assert.equal(refusal.code, OUTBOUND_REFUSED_CODE);
    return refusal.message;
  }
  assert.fail('the request was sent');
}

describe('outbound client', () => {
  test('a host name that resolves to loopback is refused at connect time and never reaches the receiver', async () => {
    const r = await receiver();
    const port = new URL(r.url).port;
    const message = await refusalOf(post(client({}), `http://localhost:${port}/notices`));
    assert.match(
      message,
      /^localhost resolves to (127\.0\.0\.1|::1), which is a loopback address, refused while outbound\.allow_loopback is false$/,
    );
    assert.equal(r.requests.length, 0, 'the receiver saw nothing');
  });

  test('a literal refused address is refused before connecting', async () => {
    const r = await receiver();
    const port = new URL(r.url).port;
    const c = client({});
    assert.match(await refusalOf(post(c, `${r.url}/notices`)), /^127\.0\.0\.1 is a loopback address/);
    assert.match(await refusalOf(post(c, `http://[::ffff:127.0.0.1]:${port}/notices`)), /loopback/);
    assert.match(await refusalOf(post(c, 'http://169.254.169.254/latest/meta-data/')), /link-local.*never a delivery target/);
    assert.match(await refusalOf(post(c, `http://0.0.0.0:${port}/`)), /unspecified/);
    assert.equal(r.requests.length, 0);
  });

  test('an allowed target still gets the request, by name and by address', async () => {
    const r = await receiver();
    const port = new URL(r.url).port;
    const c = client({ allow_loopback: true });
    const byName = await post(c, `http://localhost:${port}/by-name`);
    await byName.body?.cancel();
    assert.equal(byName.status, 204);
    const byAddress = await post(c, `${r.url}/by-address`);
    await byAddress.body?.cancel();
    assert.equal(byAddress.status, 204);
    assert.deepEqual(
      r.requests.map((q) => q.path),
      ['/by-name', '/by-address'],
    );
  });

  test('an allow-list entry opens one address while loopback stays refused', async () => {
    const r = await receiver();
    const c = client({ allow: ['127.0.0.1/32'] });
    const response = await post(c, `${r.url}/listed`);
    await response.body?.cancel();
    assert.equal(response.status, 204);
    assert.equal(r.requests.length, 1);
  });

  test('plain http refused by policy is refused even to an allowed address', async () => {
    const r = await receiver();
    const port = new URL(r.url).port;
    const message = await refusalOf(post(client({ allow_loopback: true, plain_http: 'never' }), `http://localhost:${port}/`));
    assert.match(message, /plain http.*outbound\.plain_http/);
    assert.equal(r.requests.length, 0);
  });
});
