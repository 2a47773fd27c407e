/**
 * API keys end to end: the key format, authentication through both headers, scopes, revocation
 * and expiry taking effect at once (also when revoked by the CLI in another process), last-use
 * bookkeeping without a write per request, the REST and CLI management commands, and the rate
 * limits per key and per address.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStorage } from '../../foundation/storage/index.ts';
import { API_KEY_PREFIX, generateApiKey, newKeyId, parseApiKey, secretDigest, secretMatches } from './format.ts';
import { assertProblem, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';
import { runNeuronCli as runCli } from '../../../test/helpers/cli.ts';
import { withLastCharacterChanged } from '../../../test/helpers/tamper.ts';

describe('API key format', () => {
  it('round-trips: prefix, key id, secret, checksum; stores only a digest', () => {
    const id = newKeyId();
    const { key, digest } = generateApiKey(id);
    assert.match(key, /^nrn_[0-9a-z]{12}_[0-9A-Za-z]{38}$/);
    assert.ok(key.startsWith(`${API_KEY_PREFIX}${id}_`));
    const parsed = parseApiKey(key);
    assert.ok(parsed);
    assert.equal(parsed.id, id);
    assert.equal(digest, secretDigest(parsed.secret));
    assert.match(digest, /^[0-9a-f]{64}$/);
    assert.ok(!digest.includes(parsed.secret));
    assert.equal(secretMatches(parsed.secret, digest), true);
    assert.equal(secretMatches(withLastCharacterChanged(parsed.secret), digest), false);
  });

  it('rejects typos, truncation and other text by the checksum, without a lookup', () => {
    const { key } = generateApiKey(newKeyId());
    for (let i = API_KEY_PREFIX.length + 13; i < key.length; i += 5) {
      const typo = `${key.slice(0, i)}${key[i] === 'a' ? 'b' : 'a'}${key.slice(i + 1)}`;
      assert.equal(parseApiKey(typo), null, `typo at ${i}`);
    }
    assert.equal(parseApiKey(key.slice(0, -1)), null);
    assert.equal(parseApiKey(`${key}x`), null);
    assert.equal(parseApiKey(key.replace('nrn_', 'nrx_')), null);
    assert.equal(parseApiKey(''), null);
  });

  it('never repeats', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateApiKey(newKeyId()).key));
    assert.equal(keys.size, 200);
  });
});

describe('API keys over HTTP', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron({ config: { api: { key_last_used_flush_ms: 200 } } });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('accepts the key as Authorization: Bearer and as X-API-Key', async () => {
    assert.equal((await t.request('GET', '/v1/organization', { key: t.keys.read })).status, 200);
    assert.equal((await t.request('GET', '/v1/organization', { key: t.keys.read, keyHeader: 'x-api-key' })).status, 200);
    const lower = await t.request('GET', '/v1/organization', { headers: { authorization: `bearer ${t.keys.read}` } });
    assert.equal(lower.status, 200);
  });

  it('refuses a missing, malformed, unknown or wrong key with 401 and a WWW-Authenticate challenge', async () => {
    const missing = await t.request('GET', '/v1/relationships');
    assertProblem(missing, 401, 'UNAUTHENTICATED');
    assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer realm="neuron"/);

    const malformed = await t.request('GET', '/v1/relationships', { key: 'hello' });
    assertProblem(malformed, 401, 'UNAUTHENTICATED');
    assert.match(malformed.headers.get('www-authenticate') ?? '', /invalid_token/);

    const unknown = await t.request('GET', '/v1/relationships', { key: generateApiKey(newKeyId()).key });
    assertProblem(unknown, 401, 'UNAUTHENTICATED');

    const id = parseApiKey(t.keys.read)!.id;
    const wrongSecret = await t.request('GET', '/v1/relationships', { key: generateApiKey(id).key });
    assertProblem(wrongSecret, 401, 'UNAUTHENTICATED');
    assert.equal(wrongSecret.body.detail, 'the API key is not valid');

    const basic = await t.request('GET', '/v1/relationships', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assertProblem(basic, 401, 'UNAUTHENTICATED');

    const conflicting = await t.request('GET', '/v1/relationships', { key: t.keys.read, headers: { 'x-api-key': t.keys.admin } });
    assertProblem(conflicting, 401, 'UNAUTHENTICATED');
  });

  it('enforces scopes: admin implies write implies read', async () => {
    assertProblem(await t.request('GET', '/v1/api-keys', { key: t.keys.read }), 403, 'FORBIDDEN');
    assertProblem(await t.request('GET', '/v1/api-keys', { key: t.keys.write }), 403, 'FORBIDDEN');
    assert.equal((await t.request('GET', '/v1/api-keys', { key: t.keys.admin })).status, 200);
    assert.equal((await t.request('GET', '/v1/relationships', { key: t.keys.admin })).status, 200);
    assert.equal((await t.request('GET', '/v1/relationships', { key: t.keys.write })).status, 200);
  });

  it('creates a key through the API, shows it once, and audits it with the caller as actor', async () => {
    const created = await t.request('POST', '/v1/api-keys', {
      key: t.keys.admin,
      body: { label: 'booking-app', scopes: ['read', 'write'] },
    });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.key, /^nrn_/);
    assert.deepEqual(created.body.scopes, ['read', 'write']);
    assert.equal(created.body.status, 'active');
    assert.equal((await t.request('GET', '/v1/relationships', { key: created.body.key })).status, 200);
    assertProblem(await t.request('GET', '/v1/api-keys', { key: created.body.key }), 403, 'FORBIDDEN');

    const listed = await t.request('GET', '/v1/api-keys?limit=200', { key: t.keys.admin });
    const entry = listed.body.items.find((k: { id: string }) => k.id === created.body.id);
    assert.equal(entry.label, 'booking-app');
    assert.equal('key' in entry || 'digest' in entry, false, 'a listing never shows the key or its digest');
    assert.ok(!listed.text.includes(created.body.key.split('_')[2]), 'the secret appears nowhere');

    const row = await t.neuron.storage.db.selectFrom('api_keys').selectAll().where('id', '=', created.body.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(created.body.key.split('_')[2]), 'only a digest is stored');

    const audit = await t.request('GET', '/v1/audit/events?event_type=api_key.created&limit=200', { key: t.keys.read });
    const event = audit.body.items.find((e: { details: { key_id?: string } }) => e.details.key_id === created.body.id);
    assert.equal(event.actor, 'api-key:admin');
  });

  it('refuses invalid key requests with 400 naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ label: 'x', scopes: ['root'] }, 'body.scopes.0'],
      [{ label: 'x', scopes: [] }, 'body.scopes'],
      [{ label: 'has spaces', scopes: ['read'] }, 'body.label'],
      [{ scopes: ['read'] }, 'body.label'],
      [{ label: 'x', scopes: ['read'], expires_at: 'tomorrow' }, 'body.expires_at'],
      [{ label: 'x', scopes: ['read'], expires_at: '2001-01-01T00:00:00Z' }, 'body.expires_at'],
      [{ label: 'x', scopes: ['read'], admin: true }, 'body.admin'],
    ];
    for (const [body, field] of cases) {
      const response = await t.request('POST', '/v1/api-keys', { key: t.keys.admin, body });
      assertProblem(response, 400, 'VALIDATION_FAILED');
      assert.ok(
        response.body.errors.some((e: { path: string }) => e.path === field),
        `${JSON.stringify(body)} names ${field}: ${response.text}`,
      );
    }
  });

  it('revokes through the API: refused on the very next request; 409 again; 404 unknown', async () => {
    const { key, id } = await t.createKey(['read'], { label: 'to-revoke' });
    assert.equal((await t.request('GET', '/v1/organization', { key })).status, 200);
    const revoked = await t.request('DELETE', `/v1/api-keys/${id}`, { key: t.keys.admin });
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.status, 'revoked');
    const refused = await t.request('GET', '/v1/organization', { key });
    assertProblem(refused, 401, 'UNAUTHENTICATED');
    assert.equal(refused.body.detail, 'the API key has been revoked');
    assertProblem(await t.request('DELETE', `/v1/api-keys/${id}`, { key: t.keys.admin }), 409, 'CONFLICT');
    assertProblem(await t.request('DELETE', `/v1/api-keys/${newKeyId()}`, { key: t.keys.admin }), 404, 'NOT_FOUND');
    assertProblem(await t.request('DELETE', '/v1/api-keys/NOT-AN-ID', { key: t.keys.admin }), 400, 'VALIDATION_FAILED');
  });

  it('refuses a key revoked by the CLI in another process on its next request', async () => {
    const { key, id } = await t.createKey(['read'], { label: 'cli-revoked' });
    assert.equal((await t.request('GET', '/v1/organization', { key })).status, 200);
    const result = await runCli(t.configFile, ['api-key', 'revoke', id, '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).status, 'revoked');
    const refused = await t.request('GET', '/v1/organization', { key });
    assertProblem(refused, 401, 'UNAUTHENTICATED');
  });

  it('refuses a key from the moment it expires', async () => {
    const { key } = await t.createKey(['read'], { label: 'short-lived', expiresAt: new Date(Date.now() + 1_000).toISOString() });
    assert.equal((await t.request('GET', '/v1/organization', { key })).status, 200);
    await sleep(1_100);
    const refused = await t.request('GET', '/v1/organization', { key });
    assertProblem(refused, 401, 'UNAUTHENTICATED');
    assert.equal(refused.body.detail, 'the API key has expired');
  });

  it('keeps last_used_at in memory and writes it in batches, not per request', async () => {
    const { key, id } = await t.createKey(['read'], { label: 'last-used' });
    const before = Date.now();
    for (let i = 0; i < 5; i += 1) assert.equal((await t.request('GET', '/v1/organization', { key })).status, 200);
    const listed = await t.request('GET', '/v1/api-keys?limit=200', { key: t.keys.admin });
    const entry = listed.body.items.find((k: { id: string }) => k.id === id);
    assert.ok(Date.parse(entry.last_used_at) >= before - 5, 'listing shows the use at once');
    // Written by the periodic flush (api.key_last_used_flush_ms = 200 here).
    let stored: string | null = null;
    for (let i = 0; i < 50 && stored === null; i += 1) {
      await sleep(50);
      stored = (await t.neuron.storage.db.selectFrom('api_keys').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow())
        .last_used_at;
    }
    assert.ok(stored !== null && Date.parse(stored) >= before - 5);
  });
});

describe('last use written at stop', () => {
  it('flushes pending last-use times when the Neuron stops', async () => {
    const t = await startApiNeuron({ config: { api: { key_last_used_flush_ms: 600_000 } } });
    const { key, id } = await t.createKey(['read'], { label: 'flush-at-stop' });
    assert.equal((await t.request('GET', '/v1/organization', { key })).status, 200);
    const row = await t.neuron.storage.db.selectFrom('api_keys').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow();
    assert.equal(row.last_used_at, null, 'no write per request');
    const sqliteFile = t.neuron.paths.sqliteFile;
    await t.stop({ keepData: true });
    const storage = await openStorage({ url: '', sqliteFile, sqliteSynchronous: 'FULL', busyTimeoutMs: 1_000, poolMax: 1 });
    try {
      const after = await storage.db.selectFrom('api_keys').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow();
      assert.notEqual(after.last_used_at, null);
    } finally {
      await storage.close();
      const { rmSync } = await import('node:fs');
      rmSync(t.dataDir, { recursive: true, force: true });
    }
  });
});

describe('neuron api-key (CLI)', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.stop();
  });

  it('creates, lists and revokes keys; the created key works at once against the running Neuron', async () => {
    const created = await runCli(t.configFile, [
      'api-key',
      'create',
      '--label',
      'front-desk',
      '--scopes',
      'read,write',
      '--expires',
      '90d',
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { id: string; key: string; scopes: string[]; expires_at: string };
    assert.deepEqual(key.scopes, ['read', 'write']);
    assert.ok(Date.parse(key.expires_at) > Date.now() + 89 * 86_400_000);
    assert.equal((await t.request('GET', '/v1/relationships', { key: key.key })).status, 200);

    const human = await runCli(t.configFile, ['api-key', 'create', '--label', 'reader', '--scopes', 'read']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /nrn_[0-9a-z]{12}_/);
    assert.match(human.stdout, /only time it is shown/);

    const listed = await runCli(t.configFile, ['api-key', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const keys = JSON.parse(listed.stdout) as Array<{ id: string; label: string }>;
    assert.ok(keys.some((k) => k.id === key.id && k.label === 'front-desk'));
    assert.ok(!listed.stdout.includes(key.key.split('_')[2]!), 'list never shows a secret');

    const revoked = await runCli(t.configFile, ['api-key', 'revoke', key.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assertProblem(await t.request('GET', '/v1/relationships', { key: key.key }), 401, 'UNAUTHENTICATED');

    const audit = await t.neuron.storage.db
      .selectFrom('audit_log')
      .select(['event_type', 'actor'])
      .where('event_type', 'in', ['api_key.created', 'api_key.revoked'])
      .where('actor', '=', 'cli')
      .execute();
    assert.ok(audit.some((e) => e.event_type === 'api_key.revoked'));
  });

  it('refuses bad arguments with exit code 2 and unknown keys with exit code 1', async () => {
    const scopes = await runCli(t.configFile, ['api-key', 'create', '--label', 'x', '--scopes', 'read,root']);
    assert.equal(scopes.code, 2);
    assert.match(scopes.stderr, /--scopes/);
    const unknown = await runCli(t.configFile, ['api-key', 'revoke', 'aaaaaaaaaaaa']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no API key/);
  });
});

describe('rate limits', () => {
  let t: ApiTestNeuron;
  before(async () => {
    // One token a second per key; one failed authentication allowed every 2 s per address.
    t = await startApiNeuron({ config: { api: { rate_limit_per_minute: 60, auth_failure_limit_per_minute: 30 } } });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('answers 429 with Retry-After and RateLimit headers once a key is over its limit, and recovers', async () => {
    const { key } = await t.createKey(['read'], { label: 'busy-app' });
    const first = await t.request('GET', '/v1/organization', { key });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('ratelimit-policy'), '60;w=60');
    assert.match(first.headers.get('ratelimit') ?? '', /^limit=60, remaining=59, reset=\d+$/);

    let allowed = 1;
    let refused: Awaited<ReturnType<typeof t.request>> | null = null;
    while (refused === null && allowed < 100) {
      const response = await t.request('GET', '/v1/organization', { key });
      if (response.status === 429) refused = response;
      else {
        assert.equal(response.status, 200);
        allowed += 1;
      }
    }
    assert.ok(refused, 'the limit was reached');
    assert.ok(allowed >= 60 && allowed <= 63, `about 60 requests allowed, got ${allowed}`);
    assertProblem(refused, 429, 'RATE_LIMITED');
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`);
    assert.match(refused.headers.get('ratelimit') ?? '', /^limit=60, remaining=0, reset=\d+$/);

    // Another key is not affected.
    assert.equal((await t.request('GET', '/v1/organization', { key: t.keys.read })).status, 200);

    await sleep(retryAfter * 1_000 + 100);
    assert.equal((await t.request('GET', '/v1/organization', { key })).status, 200);
  });

  it('locks out an address after too many failed authentications, audits it, and recovers', async () => {
    const { key } = await t.createKey(['read'], { label: 'innocent' });
    const target = parseApiKey(t.keys.admin)!.id;
    let failures = 0;
    let locked: Awaited<ReturnType<typeof t.request>> | null = null;
    while (locked === null && failures < 100) {
      // Guessing secrets for the admin key's id.
      const response = await t.request('GET', '/v1/organization', { key: generateApiKey(target).key });
      if (response.status === 429) locked = response;
      else {
        assertProblem(response, 401, 'UNAUTHENTICATED');
        failures += 1;
      }
    }
    assert.ok(locked, 'the address was locked out');
    assert.ok(failures >= 30 && failures <= 32, `about 30 failures allowed, got ${failures}`);
    assertProblem(locked, 429, 'RATE_LIMITED');
    assert.ok(Number(locked.headers.get('retry-after')) >= 1);

    // While locked out, even a valid key from this address is refused, so guessing learns nothing.
    assertProblem(await t.request('GET', '/v1/organization', { key }), 429, 'RATE_LIMITED');
    // A request without a key is not an authentication attempt.
    assertProblem(await t.request('GET', '/v1/organization'), 401, 'UNAUTHENTICATED');

    const audit = await t.neuron.storage.db.selectFrom('audit_log').selectAll().where('event_type', '=', 'api.auth_lockout').execute();
    assert.equal(audit.length, 1, 'audited once per lockout');
    const details = JSON.parse(audit[0]!.details) as Record<string, unknown>;
    assert.equal(details['client_ip'], '127.0.0.1');
    assert.equal(details['key_id'], target);

    await sleep(Number(locked.headers.get('retry-after')) * 1_000 + 100);
    assert.equal((await t.request('GET', '/v1/organization', { key })).status, 200);
  });
});
