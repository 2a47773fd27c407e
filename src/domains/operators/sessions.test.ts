/**
 * Console sign-in and sessions over real sockets: the cookie and its attributes, wrong names and
 * passwords, the per-name lockout and its audit entries, the session as a principal on the REST
 * routes (role scopes, CSRF), idle expiry and sign-out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startApiNeuron, assertProblem, insertRelationship, type ApiResponse, type ApiTestNeuron } from '../../../test/helpers/api.ts';
import { OperatorService } from './service.ts';
import { sessionDigest } from './service.ts';

/** Cheap scrypt so the suite spends its time on behaviour, not hashing (never a production value). */
const TEST_SCRYPT = { n: 1024, r: 8, p: 1, keylen: 32 };
const PASSWORD = 'correct horse battery staple';

function sessionCookieOf(response: ApiResponse): { value: string; attributes: string[] } {
  const header = response.headers.getSetCookie().find((cookie) => cookie.startsWith('neuron_session='));
  assert.ok(header !== undefined, `a session cookie was set: ${response.headers.getSetCookie().join(' | ')}`);
  const [pair, ...attributes] = header.split(';').map((part) => part.trim());
  return { value: pair!.slice('neuron_session='.length), attributes };
}

async function auditOf(t: ApiTestNeuron, type: string): Promise<Array<{ actor: string; details: Record<string, unknown> }>> {
  const rows = await t.neuron.storage.db
    .selectFrom('audit_log')
    .select(['actor', 'details'])
    .where('event_type', '=', type)
    .orderBy('seq')
    .execute();
  return rows.map((row) => ({ actor: row.actor, details: JSON.parse(row.details) as Record<string, unknown> }));
}

describe('console sessions', () => {
  let t: ApiTestNeuron;
  let operators: OperatorService;

  const signIn = (name: string, password: string): Promise<ApiResponse> =>
    t.request('POST', '/v1/console/session', { body: { name, password } });
  const withCookie = (cookie: string, extra: Record<string, string> = {}): Record<string, string> => ({
    cookie: `other=1; neuron_session=${cookie}`,
    ...extra,
  });

  before(async () => {
    t = await startApiNeuron({
      config: { console: { scrypt: TEST_SCRYPT, lockout_failures: 3, lockout_ms: 60_000, signin_limit_per_minute: 1_000 } },
    });
    operators = new OperatorService({ storage: t.neuron.storage, audit: t.neuron.audit, settings: t.neuron.config.console });
    await operators.add({ name: 'frontdesk', role: 'front-desk', password: PASSWORD, actor: 'cli' });
    await operators.add({ name: 'boss', role: 'admin', password: PASSWORD, actor: 'cli' });
    await operators.add({ name: 'victim', role: 'front-desk', password: PASSWORD, actor: 'cli' });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('signs in: a random HttpOnly, SameSite=Strict cookie (not Secure over plain http), the operator, a CSRF token; only its digest is stored', async () => {
    const response = await signIn('frontdesk', PASSWORD);
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(response.body.operator, { name: 'frontdesk', role: 'front-desk' });
    assert.match(response.body.csrf_token, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(Date.parse(response.body.expires_at) > Date.now());
    const cookie = sessionCookieOf(response);
    assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
    assert.ok(cookie.attributes.includes('HttpOnly'));
    assert.ok(cookie.attributes.includes('SameSite=Strict'));
    assert.ok(cookie.attributes.includes('Path=/'));
    assert.ok(!cookie.attributes.includes('Secure'), 'no Secure over plain http');
    const rows = await t.neuron.storage.db.selectFrom('operator_sessions').selectAll().execute();
    assert.ok(rows.some((row) => row.token_digest === sessionDigest(cookie.value)));
    assert.ok(
      rows.every((row) => row.token_digest !== cookie.value),
      'the token itself is not stored',
    );

    const again = await t.request('GET', '/v1/console/session', { headers: withCookie(cookie.value) });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body.operator, { name: 'frontdesk', role: 'front-desk' });
    assert.equal(again.body.csrf_token, response.body.csrf_token);
    const signedIn = await auditOf(t, 'console.signed_in');
    assert.ok(signedIn.some((entry) => entry.actor === 'operator:frontdesk' && entry.details['name'] === 'frontdesk'));
    assert.ok(!JSON.stringify(signedIn).includes(PASSWORD));
  });

  it('answers a wrong password and an unknown name alike, 401 INVALID_CREDENTIALS, audited without the password', async () => {
    const wrong = await signIn('boss', 'not the password at all');
    assertProblem(wrong, 401, 'INVALID_CREDENTIALS');
    const unknown = await signIn('nobody', 'not the password at all');
    assertProblem(unknown, 401, 'INVALID_CREDENTIALS');
    assert.equal(wrong.body.detail, unknown.body.detail);
    assert.equal(wrong.headers.getSetCookie().length, 0);
    const failed = await auditOf(t, 'console.signin_failed');
    assert.deepEqual(
      failed
        .filter((e) => e.details['reason'] === 'invalid_credentials')
        .map((e) => e.details['name'])
        .slice(-2),
      ['boss', 'nobody'],
    );
    assert.ok(!JSON.stringify(failed).includes('not the password at all'));
    assertProblem(await t.request('GET', '/v1/console/session'), 401, 'UNAUTHENTICATED');
    // A success resets the count, so the failure above does not add to a later lockout.
    assert.equal((await signIn('boss', PASSWORD)).status, 200);
  });

  it('locks a name out after console.lockout_failures failures, even for the right password: 429 OPERATOR_LOCKED with Retry-After, audited', async () => {
    assertProblem(await signIn('victim', 'wrong password one'), 401, 'INVALID_CREDENTIALS');
    assertProblem(await signIn('victim', 'wrong password two'), 401, 'INVALID_CREDENTIALS');
    const third = await signIn('victim', 'wrong password three');
    assertProblem(third, 429, 'OPERATOR_LOCKED');
    assert.ok(Number(third.headers.get('retry-after')) > 0);
    const right = await signIn('victim', PASSWORD);
    assertProblem(right, 429, 'OPERATOR_LOCKED');
    assert.ok(Number(right.headers.get('retry-after')) > 0);
    assert.equal(right.headers.getSetCookie().length, 0, 'no session while locked');
    const lockouts = await auditOf(t, 'console.signin_lockout');
    assert.deepEqual(
      lockouts.map((e) => e.details['name']),
      ['victim'],
    );
    const failed = await auditOf(t, 'console.signin_failed');
    assert.ok(failed.some((e) => e.details['name'] === 'victim' && e.details['reason'] === 'locked'));
    // An unknown name locks out the same way, so the lockout does not tell names apart.
    for (let i = 0; i < 2; i++) assertProblem(await signIn('ghost', 'anything at all'), 401, 'INVALID_CREDENTIALS');
    assertProblem(await signIn('ghost', 'anything at all'), 429, 'OPERATOR_LOCKED');
    // Resetting the password lifts the lockout.
    await operators.resetPassword('victim', `${PASSWORD} 2`, 'cli');
    assert.equal((await signIn('victim', `${PASSWORD} 2`)).status, 200);
  });

  it('is a principal on the REST routes: front desk reads and writes, and is refused admin routes with 403', async () => {
    const cookie = sessionCookieOf(await signIn('frontdesk', PASSWORD));
    const session = await t.request('GET', '/v1/console/session', { headers: withCookie(cookie.value) });
    const csrf = session.body.csrf_token as string;
    assert.equal((await t.request('GET', '/v1/relationships', { headers: withCookie(cookie.value) })).status, 200);
    const relationship = await insertRelationship(t.neuron);
    const suspended = await t.request('POST', `/v1/relationships/${relationship.id}/suspend`, {
      headers: withCookie(cookie.value, { 'x-csrf-token': csrf }),
      body: { reason: 'front desk test' },
    });
    assert.equal(suspended.status, 200, suspended.text);
    const audited = await auditOf(t, 'relationship.suspended');
    assert.equal(audited.at(-1)?.actor, 'operator:frontdesk', 'the console action is audited with the operator name');
    const admin = await t.request('POST', '/v1/api-keys', {
      headers: withCookie(cookie.value, { 'x-csrf-token': csrf }),
      body: { label: 'from-console', scopes: ['read'] },
    });
    assertProblem(admin, 403, 'FORBIDDEN');
    assertProblem(await t.request('GET', '/v1/api-keys', { headers: withCookie(cookie.value) }), 403, 'FORBIDDEN');

    const boss = sessionCookieOf(await signIn('boss', PASSWORD));
    const bossCsrf = (await t.request('GET', '/v1/console/session', { headers: withCookie(boss.value) })).body.csrf_token as string;
    const created = await t.request('POST', '/v1/api-keys', {
      headers: withCookie(boss.value, { 'x-csrf-token': bossCsrf }),
      body: { label: 'from-console', scopes: ['read'] },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal((await auditOf(t, 'api_key.created')).at(-1)?.actor, 'operator:boss');
  });

  it('refuses a state change made with the cookie but without the right X-CSRF-Token: 403 CSRF_REJECTED, nothing changed', async () => {
    const cookie = sessionCookieOf(await signIn('frontdesk', PASSWORD));
    const relationship = await insertRelationship(t.neuron);
    const auditBefore = (
      await t.neuron.storage.db.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow()
    ).seq;
    for (const headers of [withCookie(cookie.value), withCookie(cookie.value, { 'x-csrf-token': 'A'.repeat(43) })]) {
      const refused = await t.request('POST', `/v1/relationships/${relationship.id}/suspend`, { headers, body: { reason: 'forged' } });
      assertProblem(refused, 403, 'CSRF_REJECTED');
    }
    const row = await t.neuron.storage.db
      .selectFrom('relationships')
      .select('status')
      .where('id', '=', relationship.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.status, 'active');
    const auditAfter = (
      await t.neuron.storage.db.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow()
    ).seq;
    assert.equal(auditAfter, auditBefore, 'nothing written');
    assertProblem(await t.request('DELETE', '/v1/console/session', { headers: withCookie(cookie.value) }), 403, 'CSRF_REJECTED');
    // An API key needs no CSRF token, whatever cookie comes along.
    const byKey = await t.request('POST', `/v1/relationships/${relationship.id}/suspend`, {
      key: t.keys.write,
      headers: withCookie(cookie.value),
      body: { reason: 'by key' },
    });
    assert.equal(byKey.status, 200, byKey.text);
    assert.equal((await auditOf(t, 'relationship.suspended')).at(-1)?.actor, 'api-key:writer');
  });

  it('signs out: the session row is deleted, the cookie cleared, and the old cookie no longer works anywhere', async () => {
    const cookie = sessionCookieOf(await signIn('frontdesk', PASSWORD));
    const csrf = (await t.request('GET', '/v1/console/session', { headers: withCookie(cookie.value) })).body.csrf_token as string;
    const out = await t.request('DELETE', '/v1/console/session', { headers: withCookie(cookie.value, { 'x-csrf-token': csrf }) });
    assert.equal(out.status, 204, out.text);
    const cleared = sessionCookieOf(out);
    assert.equal(cleared.value, '');
    assert.ok(cleared.attributes.includes('Max-Age=0'));
    const row = await t.neuron.storage.db
      .selectFrom('operator_sessions')
      .select('token_digest')
      .where('token_digest', '=', sessionDigest(cookie.value))
      .executeTakeFirst();
    assert.equal(row, undefined);
    assertProblem(await t.request('GET', '/v1/console/session', { headers: withCookie(cookie.value) }), 401, 'SESSION_EXPIRED');
    assertProblem(await t.request('GET', '/v1/relationships', { headers: withCookie(cookie.value) }), 401, 'SESSION_EXPIRED');
    assert.ok((await auditOf(t, 'console.signed_out')).some((e) => e.actor === 'operator:frontdesk'));
  });

  it('ends every session of an operator who is removed', async () => {
    await operators.add({ name: 'leaver', role: 'admin', password: PASSWORD, actor: 'cli' });
    const cookie = sessionCookieOf(await signIn('leaver', PASSWORD));
    assert.equal((await t.request('GET', '/v1/api-keys', { headers: withCookie(cookie.value) })).status, 200);
    await operators.remove('leaver', 'cli');
    assertProblem(await t.request('GET', '/v1/api-keys', { headers: withCookie(cookie.value) }), 401, 'SESSION_EXPIRED');
  });
});

describe('console session lifetimes', () => {
  let t: ApiTestNeuron;
  /** Small configured lifetimes; the waits below are generous multiples of them. */
  const IDLE_MS = 400;
  before(async () => {
    t = await startApiNeuron({ config: { console: { scrypt: TEST_SCRYPT, session_idle_ms: IDLE_MS, session_touch_interval_ms: 0 } } });
    const operators = new OperatorService({ storage: t.neuron.storage, audit: t.neuron.audit, settings: t.neuron.config.console });
    await operators.add({ name: 'sleepy', role: 'front-desk', password: PASSWORD, actor: 'cli' });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('ends a session left idle for console.session_idle_ms: 401 SESSION_EXPIRED, the cookie cleared', async () => {
    const response = await t.request('POST', '/v1/console/session', { body: { name: 'sleepy', password: PASSWORD } });
    assert.equal(response.status, 200, response.text);
    const cookie = sessionCookieOf(response).value;
    assert.equal((await t.request('GET', '/v1/patients', { headers: { cookie: `neuron_session=${cookie}` } })).status, 200);
    await sleep(IDLE_MS * 3);
    const expired = await t.request('GET', '/v1/patients', { headers: { cookie: `neuron_session=${cookie}` } });
    assertProblem(expired, 401, 'SESSION_EXPIRED');
    assert.equal(sessionCookieOf(expired).value, '', 'the answer clears the cookie');
    assertProblem(
      await t.request('GET', '/v1/console/session', { headers: { cookie: `neuron_session=${cookie}` } }),
      401,
      'SESSION_EXPIRED',
    );
  });
});

describe('console sign-in limits and cookie security', () => {
  let t: ApiTestNeuron;
  before(async () => {
    // Loopback is a trusted proxy here, so the test can say the browser came over TLS.
    t = await startApiNeuron({
      config: { server: { trusted_proxies: ['loopback'] }, console: { scrypt: TEST_SCRYPT, signin_limit_per_minute: 2 } },
    });
    const operators = new OperatorService({ storage: t.neuron.storage, audit: t.neuron.audit, settings: t.neuron.config.console });
    await operators.add({ name: 'secure', role: 'admin', password: PASSWORD, actor: 'cli' });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('marks the cookie Secure when the browser came over TLS', async () => {
    const response = await t.request('POST', '/v1/console/session', {
      body: { name: 'secure', password: PASSWORD },
      headers: { 'x-forwarded-for': '192.0.2.10', 'x-forwarded-proto': 'https' },
    });
    assert.equal(response.status, 200, response.text);
    assert.ok(sessionCookieOf(response).attributes.includes('Secure'));
  });

  it('limits sign-in attempts per client address: 429 RATE_LIMITED with Retry-After, audited, other addresses unaffected', async () => {
    const from = (address: string, password: string): Promise<ApiResponse> =>
      t.request('POST', '/v1/console/session', { body: { name: 'secure', password }, headers: { 'x-forwarded-for': address } });
    assertProblem(await from('192.0.2.20', 'a wrong password here'), 401, 'INVALID_CREDENTIALS');
    assert.equal((await from('192.0.2.20', PASSWORD)).status, 200);
    const limited = await from('192.0.2.20', PASSWORD);
    assertProblem(limited, 429, 'RATE_LIMITED');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal((await from('192.0.2.21', PASSWORD)).status, 200, 'another address still signs in');
    const audited = await auditOf(t, 'console.signin_limited');
    assert.deepEqual(
      audited.map((e) => e.details['client_ip']),
      ['192.0.2.20'],
    );
  });
});
