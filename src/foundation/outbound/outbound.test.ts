/**
 * The outbound policy through a real Neuron with loopback refused (the default): notification
 * URLs refused when a provider registers, is changed or is seeded, and deliveries refused on the
 * address they would connect to, becoming dead letters at once without reaching the receiver.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../config/index.ts';
import { getOutboxRow } from '../../domains/outbox/store.ts';
import {
  api,
  cleanupAfterEach,
  connectPatient,
  createApiKey,
  deferredReceiver,
  FAST_OUTBOX,
  providerSeed,
  type Receiver,
} from '../../../test/helpers/providers.ts';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { auditEntries } from '../../../test/helpers/records.ts';
import { waitFor } from '../../../test/helpers/wait.ts';

const PROVIDER = '1679576722';
const OTHER_PROVIDER = '1376841239';
const SELF = '1003000126';

const defer = cleanupAfterEach();
const receiver = (): Promise<Receiver> => deferredReceiver(defer);

async function neuron(config: Record<string, unknown>): Promise<TestNeuron> {
  const t = await startTestNeuron({
    config: { outbox: FAST_OUTBOX, ...config, outbound: { allow_loopback: false, ...(config['outbound'] as object | undefined) } },
  });
  defer(() => t.stop());
  return t;
}

describe('outbound policy at acceptance', () => {
  test('self-registration naming a refused address gives OUTBOUND_TARGET_REFUSED and writes nothing', async () => {
    const t = await neuron({});
    const refused: Array<[string, RegExp]> = [
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254, which is a link-local address/],
      ['http://127.0.0.1:8700/notices', /loopback.*outbound\.allow_loopback/],
      ['http://[::ffff:127.0.0.1]:8700/notices', /loopback/],
      ['http://[::ffff:a9fe:a9fe]/notices', /link-local/],
      ['http://localhost:8700/notices', /loopback/],
      ['http://203.0.113.7/notices', /plain http/],
    ];
    for (const [url, why] of refused) {
      const response = await api(t.url, 'POST', '/v1/providers/register', {
        body: { provider_npi: SELF, provider_name: 'Dr. Self', provider_types: ['physician'], notification_url: url },
      });
      assert.equal(response.status, 400, `${url}: ${JSON.stringify(response.body)}`);
      assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/);
      assert.equal(response.body.code, 'OUTBOUND_TARGET_REFUSED');
      assert.deepEqual(
        response.body.errors.map((e: { path: string }) => e.path),
        ['body.notification_url'],
      );
      assert.match(response.body.errors[0].message, why, url);
    }
    const db = t.neuron.storage.db;
    assert.equal((await db.selectFrom('providers').select('npi').where('npi', '=', SELF).execute()).length, 0, 'no roster entry');
    assert.equal(
      (await db.selectFrom('audit_log').select('seq').where('event_type', '=', 'provider.registered').execute()).length,
      0,
      'no audit entry',
    );

    const accepted = await api(t.url, 'POST', '/v1/providers/register', {
      body: {
        provider_npi: SELF,
        provider_name: 'Dr. Self',
        provider_types: ['physician'],
        notification_url: 'https://dr-self.example/neuron/notices',
      },
    });
    assert.equal(accepted.status, 201, 'a host name over https is accepted (its addresses are checked at delivery)');
  });

  test('a roster change to a refused notification URL is refused and changes nothing', async () => {
    const t = await neuron({ providers: [providerSeed(PROVIDER, 'https://provider.example/notices')] });
    const key = await createApiKey(t.neuron, ['admin']);
    const response = await api(t.url, 'PATCH', `/v1/providers/${PROVIDER}`, {
      token: key,
      body: { notification_url: 'http://[::1]:8700/notices' },
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.code, 'OUTBOUND_TARGET_REFUSED');
    assert.deepEqual(
      response.body.errors.map((e: { path: string }) => e.path),
      ['body.notification_url'],
    );
    const row = await t.neuron.storage.db
      .selectFrom('providers')
      .select('notification_url')
      .where('npi', '=', PROVIDER)
      .executeTakeFirstOrThrow();
    assert.equal(row.notification_url, 'https://provider.example/notices');
  });

  test('a config seed naming a refused address is a configuration error', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'neuron-outbound-'));
    try {
      const configFile = path.join(dir, 'neuron.config.json');
      writeFileSync(
        configFile,
        JSON.stringify({ providers: [providerSeed(PROVIDER, 'http://169.254.169.254/')], outbound: { allow: ['not a host!'] } }),
      );
      assert.throws(
        () => loadConfig({ configFile, env: {} }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.ok(
            error.problems.some((p) => p.path === 'outbound.allow.0'),
            'the bad allow-list entry is named',
          );
          return true;
        },
      );
      writeFileSync(configFile, JSON.stringify({ providers: [providerSeed(PROVIDER, 'http://169.254.169.254/')] }));
      assert.throws(
        () => loadConfig({ configFile, env: {} }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.ok(
            error.problems.some((p) => p.path === 'providers.0.notification_url' && /link-local/.test(p.message)),
            JSON.stringify(error.problems),
          );
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('outbound policy at delivery', () => {
  test('a name that resolves to a refused address is refused at connect time: a dead letter at once, the receiver sees nothing', async () => {
    const r = await receiver();
    const port = new URL(r.url).port;
    const t = await neuron({ providers: [providerSeed(PROVIDER), providerSeed(OTHER_PROVIDER)] });
    // URLs accepted earlier (a name that resolved elsewhere then, a literal stored before the
    // policy existed) and now pointing at loopback: written directly, as acceptance refuses them.
    const db = t.neuron.storage.db;
    await db
      .updateTable('providers')
      .set({ notification_url: `http://localhost:${port}/notices` })
      .where('npi', '=', PROVIDER)
      .execute();
    await db
      .updateTable('providers')
      .set({ notification_url: `${r.url}/notices` })
      .where('npi', '=', OTHER_PROVIDER)
      .execute();

    const first = await connectPatient(t.handshakeUrl, PROVIDER);
    const second = await connectPatient(t.handshakeUrl, OTHER_PROVIDER);
    const eventOf = async (relationshipId: string): Promise<string> => {
      const rows = await db.selectFrom('outbox').select(['event_id', 'body']).where('kind', '=', 'provider.relationship').execute();
      const found = rows.find((row) => (JSON.parse(row.body) as { relationship_id: string }).relationship_id === relationshipId);
      assert.ok(found, `a notice for ${relationshipId}`);
      return found.event_id;
    };
    const byName = await eventOf(first.relationshipId);
    const byAddress = await eventOf(second.relationshipId);
    await waitFor(
      'both notices are dead letters',
      async () => (await getOutboxRow(db, byName))?.status === 'dead' && (await getOutboxRow(db, byAddress))?.status === 'dead',
    );

    const named = (await getOutboxRow(db, byName))!;
    assert.match(
      named.last_error ?? '',
      /^OUTBOUND_TARGET_REFUSED: localhost resolves to (127\.0\.0\.1|::1), which is a loopback address, refused while outbound\.allow_loopback is false$/,
    );
    assert.equal(named.attempts, 1, 'no retries');
    const literal = (await getOutboxRow(db, byAddress))!;
    assert.match(literal.last_error ?? '', /^OUTBOUND_TARGET_REFUSED: 127\.0\.0\.1 is a loopback address/);
    assert.equal(literal.attempts, 1);
    assert.equal(r.requests.length, 0, 'the receiver never saw a request');

    // Each refusal is audited with its dead letter: which notice, to whom, and why.
    const refused = await auditEntries(t.neuron, 'outbox.refused');
    assert.deepEqual(refused.map((entry) => entry.details.event_id).sort(), [byName, byAddress].sort());
    const forName = refused.find((entry) => entry.details.event_id === byName)!;
    assert.equal(forName.actor, 'system');
    assert.equal(forName.details.target, PROVIDER);
    assert.equal(forName.details.kind, 'provider.relationship');
    assert.equal(forName.details.reason, named.last_error);
  });

  test('an allowed target still delivers: an allow-list entry for the receiver address', async () => {
    const r = await receiver();
    const t = await neuron({ providers: [providerSeed(PROVIDER, `${r.url}/notices`)], outbound: { allow: ['127.0.0.1'] } });
    const patient = await connectPatient(t.handshakeUrl, PROVIDER);
    await waitFor('the notice arrives', () => r.accepted().length === 1);
    assert.equal(JSON.parse(r.requests[0]!.body).relationship_id, patient.relationshipId);
  });
});
