/**
 * The provider roster and the provider CareAgent routes over real HTTP against a real Neuron:
 * roster management with API keys, bad input refused with nothing written, self-registration,
 * approval and the provider credential, the handshake's provider lookup, the pull feed with its
 * cursor, and the consent check.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setStatus } from '../relationships/store.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { auditEntries } from '../../../test/helpers/records.ts';
import { getActiveProvider } from './store.ts';
import { api, connectPatient, createApiKey } from '../../../test/helpers/providers.ts';
import { withLastCharacterChanged } from '../../../test/helpers/tamper.ts';
import { waitFor } from '../../../test/helpers/wait.ts';

// Synthetic NPIs (Luhn with the 80840 prefix).
const SEEDED = '1679576722';
const A = '1376841239';
const B = '1003000126';
const C = '1234567893';
const SELF = '1649218926';
const OTHER_SELF = '1982743191';
const ENDPOINT = 'wss://provider.example/agent';
const VALID_KEY = 'A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg';
// 43 base64url characters whose bytes are not an Ed25519 point (y = 2 has no matching x).
const OFF_CURVE_KEY = 'AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

let t: TestNeuron;
let rosterAdmin: string;
let reader: string;

before(async () => {
  t = await startTestNeuron({
    config: { providers: [{ npi: SEEDED, name: 'Dr. Seed', provider_endpoint: ENDPOINT, specialty: 'family medicine' }] },
  });
  rosterAdmin = await createApiKey(t.neuron, ['admin'], 'roster-admin');
  reader = await createApiKey(t.neuron, ['read'], 'roster-reader');
});
after(async () => t.stop());

const providerCount = async (): Promise<number> => (await t.neuron.storage.db.selectFrom('providers').select('npi').execute()).length;

describe('roster over REST (API keys)', () => {
  test('config seeds are on the roster, active', async () => {
    const got = await api(t.url, 'GET', `/v1/providers/${SEEDED}`, { token: reader });
    assert.equal(got.status, 200);
    assert.equal(got.body.status, 'active');
    assert.equal(got.body.specialty, 'family medicine');
    assert.deepEqual(await getActiveProvider(t.neuron.storage.db, SEEDED), { npi: SEEDED, endpoint: ENDPOINT, publicKey: null });
  });

  test('create, read, page, change, approve, suspend and remove, each audited', async () => {
    const created = await api(t.url, 'POST', '/v1/providers', {
      token: rosterAdmin,
      body: {
        npi: A,
        name: 'Dr. A',
        provider_types: ['physician', 'laboratory'],
        provider_endpoint: 'https://a.example/agent',
        provider_public_key: VALID_KEY,
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.status, 'pending');
    assert.equal(created.body.credential_id, null);
    assert.equal(await getActiveProvider(t.neuron.storage.db, A), null, 'pending is not active');
    assert.equal((await api(t.url, 'POST', '/v1/providers', { token: rosterAdmin, body: { npi: A, name: 'Dr. A again' } })).status, 409);
    // A bidirectional control in a name is refused (400, coded), on create and on change.
    const reordered = await api(t.url, 'POST', '/v1/providers', { token: rosterAdmin, body: { npi: C, name: 'Dr. \u202EC' } });
    assert.equal(reordered.status, 400);
    assert.equal(reordered.body.code, 'VALIDATION_FAILED');
    assert.equal(
      (await api(t.url, 'PATCH', `/v1/providers/${A}`, { token: rosterAdmin, body: { name: 'Dr. \u2066A\u2069' } })).body.code,
      'VALIDATION_FAILED',
    );
    assert.equal(
      (
        await api(t.url, 'POST', '/v1/providers', {
          token: rosterAdmin,
          body: { npi: B, name: 'Dr. B', provider_endpoint: ENDPOINT, status: 'active' },
        })
      ).status,
      201,
    );

    // Pages of one in NPI order, with an opaque cursor.
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const page: { status: number; body: any } = await api(t.url, 'GET', `/v1/providers?limit=1${after ? `&after=${after}` : ''}`, {
        token: reader,
      });
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 1);
      seen.push(...page.body.items.map((p: { npi: string }) => p.npi));
      after = page.body.next;
    } while (after !== null);
    assert.deepEqual(seen, [...seen].sort());
    assert.ok([A, B, SEEDED].every((npi) => seen.includes(npi)));
    assert.equal((await api(t.url, 'GET', '/v1/providers?after=not-a-cursor', { token: reader })).status, 400);

    const changed = await api(t.url, 'PATCH', `/v1/providers/${A}`, {
      token: rosterAdmin,
      body: { specialty: 'cardiology', provider_public_key: null },
    });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.specialty, 'cardiology');
    assert.equal(changed.body.provider_public_key, null);

    const approved = await api(t.url, 'POST', `/v1/providers/${A}/approve`, { token: rosterAdmin });
    assert.equal(approved.status, 200);
    assert.match(approved.body.credential, /^nprv_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(approved.body.provider.status, 'active');
    assert.equal(approved.headers.get('cache-control'), 'no-store');
    assert.equal(
      approved.body.neuron_public_key,
      t.neuron.organizationKey.publicKey,
      'the key that signs notices comes with the credential',
    );
    assert.deepEqual(await getActiveProvider(t.neuron.storage.db, A), { npi: A, endpoint: 'https://a.example/agent', publicKey: null });
    const stored = await t.neuron.storage.db
      .selectFrom('providers')
      .select(['credential_id', 'credential_digest'])
      .where('npi', '=', A)
      .executeTakeFirstOrThrow();
    assert.ok(stored.credential_digest !== null && !stored.credential_digest.includes(approved.body.credential), 'only a digest is stored');
    assert.equal(
      (await api(t.url, 'GET', `/v1/providers/${A}`, { token: reader })).body.credential,
      undefined,
      'the credential is never shown again',
    );
    assert.equal(
      (await api(t.url, 'POST', `/v1/providers/${A}/approve`, { token: rosterAdmin })).status,
      409,
      'already active with a credential',
    );

    const suspended = await api(t.url, 'POST', `/v1/providers/${A}/suspend`, { token: rosterAdmin, body: { reason: 'license review' } });
    assert.equal(suspended.status, 200);
    assert.equal(suspended.body.status, 'suspended');
    assert.equal(suspended.body.credential_id, null);
    assert.equal(await getActiveProvider(t.neuron.storage.db, A), null, 'suspended is not active');

    assert.equal((await api(t.url, 'DELETE', `/v1/providers/${A}`, { token: rosterAdmin })).status, 204);
    assert.equal((await api(t.url, 'GET', `/v1/providers/${A}`, { token: reader })).status, 404);
    assert.equal((await api(t.url, 'DELETE', `/v1/providers/${A}`, { token: rosterAdmin })).status, 404);

    const actions = async (type: string): Promise<string[]> =>
      (await auditEntries(t.neuron, type)).filter((e) => e.details['npi'] === A).map((e) => e.actor);
    assert.deepEqual(await actions('provider.created'), ['api-key:roster-admin']);
    assert.deepEqual(await actions('provider.updated'), ['api-key:roster-admin']);
    assert.deepEqual(await actions('provider.approved'), ['api-key:roster-admin']);
    assert.deepEqual(await actions('provider.suspended'), ['api-key:roster-admin']);
    assert.deepEqual(await actions('provider.removed'), ['api-key:roster-admin']);
  });

  test('scopes: read keys read, changes need write, no key is refused', async () => {
    assert.equal((await api(t.url, 'GET', '/v1/providers', { token: reader })).status, 200);
    assert.equal((await api(t.url, 'POST', '/v1/providers', { token: reader, body: { npi: C, name: 'Dr. C' } })).status, 403);
    assert.equal((await api(t.url, 'POST', `/v1/providers/${SEEDED}/suspend`, { token: reader })).status, 403);
    assert.equal((await api(t.url, 'GET', '/v1/providers')).status, 401);
    assert.equal(await getActiveProvider(t.neuron.storage.db, C), null);
  });

  test('bad input is a 400 naming the field, and nothing is written', async () => {
    const countBefore = await providerCount();
    const createdBefore = (await auditEntries(t.neuron, 'provider.created')).length;
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['Luhn check digit', { npi: '1679576723', name: 'x', provider_endpoint: ENDPOINT }, 'body.npi'],
      ['not ten digits', { npi: '12345', name: 'x' }, 'body.npi'],
      ['unknown provider type', { npi: C, name: 'x', provider_types: ['wizard'] }, 'body.provider_types.0'],
      ['endpoint not a URL', { npi: C, name: 'x', provider_endpoint: 'not a url' }, 'body.provider_endpoint'],
      ['endpoint scheme', { npi: C, name: 'x', provider_endpoint: 'ftp://files.example/agent' }, 'body.provider_endpoint'],
      ['endpoint javascript scheme', { npi: C, name: 'x', provider_endpoint: 'javascript:alert(1)' }, 'body.provider_endpoint'],
      ['notification URL must be http(s)', { npi: C, name: 'x', notification_url: 'wss://n.example/hook' }, 'body.notification_url'],
      ['public key off the curve', { npi: C, name: 'x', provider_public_key: OFF_CURVE_KEY }, 'body.provider_public_key'],
      ['public key shape', { npi: C, name: 'x', provider_public_key: 'short' }, 'body.provider_public_key'],
      ['unknown field', { npi: C, name: 'x', favourite_colour: 'blue' }, 'body.favourite_colour'],
      ['active without endpoint', { npi: C, name: 'x', status: 'active' }, 'body.provider_endpoint'],
    ];
    for (const [what, body, path] of cases) {
      const answer = await api(t.url, 'POST', '/v1/providers', { token: rosterAdmin, body });
      assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(answer.body.code, 'VALIDATION_FAILED');
      assert.ok(
        answer.body.errors.some((e: { path: string }) => e.path === path),
        `${what}: expected ${path} in ${JSON.stringify(answer.body.errors)}`,
      );
    }
    const patch = await api(t.url, 'PATCH', `/v1/providers/${SEEDED}`, {
      token: rosterAdmin,
      body: { provider_endpoint: 'gopher://old.example' },
    });
    assert.equal(patch.status, 400);
    assert.equal(
      (await api(t.url, 'PATCH', `/v1/providers/${SEEDED}`, { token: rosterAdmin, body: { provider_endpoint: null } })).status,
      400,
      'an active provider keeps an endpoint',
    );
    assert.equal(await providerCount(), countBefore);
    assert.equal((await auditEntries(t.neuron, 'provider.created')).length, createdBefore);
    assert.deepEqual(await getActiveProvider(t.neuron.storage.db, SEEDED), { npi: SEEDED, endpoint: ENDPOINT, publicKey: null });
  });
});

describe('provider CareAgent: registration, credential, feed, consent', () => {
  let credential: string;
  let registrationId: string;
  let otherCredential: string;
  let otherRegistrationId: string;

  test('self-registration is always pending, and never makes a provider active', async () => {
    const registered = await api(t.url, 'POST', '/v1/providers/register', {
      body: {
        provider_npi: SELF,
        provider_name: 'Dr. Self',
        provider_types: ['physician'],
        specialty: 'pediatrics',
        credentials: [{ type: 'license', issuer: 'State Board', identifier: 'LIC-1', status: 'active' }],
        provider_endpoint: ENDPOINT,
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    assert.equal(registered.body.status, 'pending');
    assert.equal(registered.body.provider_id, SELF);
    registrationId = registered.body.registration_id;
    assert.equal(await getActiveProvider(t.neuron.storage.db, SELF), null);

    assert.equal(
      (
        await api(t.url, 'POST', '/v1/providers/register', {
          body: { provider_npi: SELF, provider_name: 'Dr. Self', provider_types: ['physician'] },
        })
      ).status,
      409,
    );
    assert.equal(
      (
        await api(t.url, 'POST', '/v1/providers/register', {
          body: { provider_npi: SEEDED, provider_name: 'Impostor', provider_types: ['physician'] },
        })
      ).status,
      409,
    );
    const sneaky = await api(t.url, 'POST', '/v1/providers/register', {
      body: { provider_npi: OTHER_SELF, provider_name: 'Dr. Sneaky', provider_types: ['physician'], status: 'active' },
    });
    assert.equal(sneaky.status, 400, 'a status cannot be sent');
    const invalid = await api(t.url, 'POST', '/v1/providers/register', {
      body: { provider_npi: '1111111111', provider_name: 'x', provider_types: ['physician'] },
    });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.errors[0].path, 'body.provider_npi');
    assert.equal(
      (
        await api(t.url, 'POST', '/v1/providers/register', {
          body: { provider_npi: OTHER_SELF, provider_name: 'x', provider_types: ['astrology'] },
        })
      ).status,
      400,
    );
    assert.equal(await getActiveProvider(t.neuron.storage.db, OTHER_SELF), null);
    assert.equal((await auditEntries(t.neuron, 'provider.registered')).filter((e) => e.details['npi'] === SELF).length, 1);

    const other = await api(t.url, 'POST', '/v1/providers/register', {
      body: {
        provider_npi: OTHER_SELF,
        provider_name: 'Dr. Other',
        provider_types: ['dental'],
        provider_endpoint: 'https://other.example/agent',
      },
    });
    assert.equal(other.status, 201);
    otherRegistrationId = other.body.registration_id;
  });

  test('approval issues the credential; it authenticates only its own provider', async () => {
    const approved = await api(t.url, 'POST', `/v1/providers/${SELF}/approve`, { token: rosterAdmin, body: {} });
    assert.equal(approved.status, 200);
    assert.equal(approved.body.registration_id, null, 'it already holds the id it registered with');
    credential = approved.body.credential;
    otherCredential = (await api(t.url, 'POST', `/v1/providers/${OTHER_SELF}/approve`, { token: rosterAdmin })).body.credential;
    assert.deepEqual(await getActiveProvider(t.neuron.storage.db, SELF), { npi: SELF, endpoint: ENDPOINT, publicKey: null });

    const beat = await api(t.url, 'GET', `/v1/providers/${registrationId}/heartbeat`, { token: credential });
    assert.equal(beat.status, 200);
    assert.equal(beat.body.status, 'connected');
    assert.equal(beat.body.roster_status, 'active');
    assert.equal(typeof beat.body.last_seen, 'string');
    assert.equal((await api(t.url, 'GET', `/v1/providers/${registrationId}/heartbeat`)).status, 200, 'the registration id alone is enough');
    assert.equal(
      (await api(t.url, 'GET', `/v1/providers/${registrationId}/heartbeat`, { token: withLastCharacterChanged(credential) })).status,
      401,
    );
    assert.equal(
      (await api(t.url, 'GET', `/v1/providers/${registrationId}/heartbeat`, { token: reader })).status,
      401,
      'an API key is not a provider credential',
    );
    assert.equal(
      (await api(t.url, 'GET', `/v1/providers/${otherRegistrationId}/heartbeat`, { token: credential })).status,
      404,
      "another provider's registration",
    );
    assert.equal((await api(t.url, 'POST', `/v1/providers/${registrationId}/disconnect`, { token: credential })).status, 200);
    assert.equal((await api(t.url, 'GET', '/v1/providers', { token: credential })).status, 401, 'a provider credential is not an API key');
  });

  test("the pull feed returns this provider's notices in order with a working cursor, and only its own", async () => {
    const patients = [];
    for (let i = 0; i < 3; i++) patients.push(await connectPatient(t.handshakeUrl, SELF, ['office_visit', 'lab_results'], `feed${i}`));
    await connectPatient(t.handshakeUrl, OTHER_SELF, ['office_visit'], 'elsewhere');

    const first = await api(t.url, 'GET', `/v1/providers/${SELF}/relationships?limit=2`, { token: credential });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.has_more, true);
    assert.deepEqual(
      first.body.items.map((n: { patient_agent_id: string }) => n.patient_agent_id),
      patients.slice(0, 2).map((p) => p.patientAgentId),
    );
    assert.equal(first.body.items[0].relationship_id, patients[0]!.relationshipId);
    assert.equal(typeof first.body.items[0].attestation.payload, 'string');
    // The feed serves the notice whole: the audit receipt the patient got rides in its attestation.
    assert.deepEqual(first.body.items[0].attestation.receipt, patients[0]!.receipt);

    const second = await api(t.url, 'GET', `/v1/providers/${SELF}/relationships?limit=2&after=${first.body.next}`, { token: credential });
    assert.equal(second.status, 200);
    assert.equal(second.body.has_more, false);
    assert.deepEqual(
      second.body.items.map((n: { patient_agent_id: string }) => n.patient_agent_id),
      [patients[2]!.patientAgentId],
    );

    // Nothing new yet: the same resume cursor comes back.
    const third = await api(t.url, 'GET', `/v1/providers/${SELF}/relationships?after=${second.body.next}`, { token: credential });
    assert.deepEqual(third.body.items, []);
    assert.equal(third.body.next, second.body.next);

    // Asking for what follows a cursor acknowledges the notices up to it (no notification_url: pull only).
    const statuses = await t.neuron.storage.db
      .selectFrom('outbox')
      .select(['status', 'body'])
      .where('target', '=', SELF)
      .orderBy('seq')
      .execute();
    assert.deepEqual(
      statuses.map((s) => s.status),
      ['delivered', 'delivered', 'delivered'],
    );

    // Another provider's feed looks like one that does not exist.
    const foreign = await api(t.url, 'GET', `/v1/providers/${SELF}/relationships`, { token: otherCredential });
    assert.equal(foreign.status, 404);
    const missing = await api(t.url, 'GET', `/v1/providers/${C}/relationships`, { token: otherCredential });
    assert.equal(missing.status, 404);
    assert.deepEqual(foreign.body.detail, missing.body.detail, 'the same answer whether or not the provider exists');
    const own = await api(t.url, 'GET', `/v1/providers/${OTHER_SELF}/relationships`, { token: otherCredential });
    assert.equal(own.body.items.length, 1);
    assert.ok(!JSON.stringify(own.body).includes('feed0'), "never another provider's patients");

    assert.equal((await api(t.url, 'GET', `/v1/providers/${SELF}/relationships?after=bogus!`, { token: credential })).status, 400);
    assert.equal((await api(t.url, 'GET', `/v1/providers/${SELF}/relationships`)).status, 401);
    // Operators may read a feed with a read key, without acknowledging anything.
    const operator = await api(t.url, 'GET', `/v1/providers/${SELF}/relationships`, { token: reader });
    assert.equal(operator.status, 200);
    assert.equal(operator.body.items.length, 3);
  });

  test('consent verify answers from the relationship store', async () => {
    const patient = await connectPatient(t.handshakeUrl, SELF, ['office_visit', 'read:medications'], 'consent');
    const verify = (token: string, body: Record<string, unknown>) => api(t.url, 'POST', '/v1/consent/verify', { token, body });

    const allowed = await verify(credential, { patient_agent_id: patient.patientAgentId, action: 'read:medications' });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.deepEqual(allowed.body, { allowed: true, relationship_id: patient.relationshipId, scope: ['office_visit', 'read:medications'] });

    const notConsented = await verify(credential, { patient_agent_id: patient.patientAgentId, action: 'surgery' });
    assert.equal(notConsented.status, 403);
    assert.equal(notConsented.body.code, 'CONSENT_DENIED');
    assert.equal((await verify(credential, { patient_agent_id: 'nobody-we-know', action: 'office_visit' })).body.code, 'CONSENT_DENIED');
    assert.equal(
      (await verify(otherCredential, { patient_agent_id: patient.patientAgentId, action: 'office_visit' })).body.code,
      'CONSENT_DENIED',
      'another provider has no relationship with this patient',
    );
    assert.equal(
      (await verify(credential, { patient_agent_id: patient.patientAgentId, action: 'office_visit', provider_public_key: VALID_KEY })).body
        .code,
      'CONSENT_DENIED',
      'a key that is not the registered one',
    );
    assert.equal(
      (await verify(reader, { patient_agent_id: patient.patientAgentId, action: 'office_visit' })).status,
      401,
      'only provider credentials',
    );

    await setStatus(t.neuron.storage.db, patient.relationshipId, 'suspended', 'test', isoNow());
    assert.equal(
      (await verify(credential, { patient_agent_id: patient.patientAgentId, action: 'office_visit' })).body.code,
      'CONSENT_DENIED',
    );
    await setStatus(t.neuron.storage.db, patient.relationshipId, 'terminated', 'test', isoNow());
    const terminated = await verify(credential, { patient_agent_id: patient.patientAgentId, action: 'office_visit' });
    assert.equal(terminated.status, 410);
    assert.equal(terminated.body.code, 'RELATIONSHIP_TERMINATED');
  });

  test('suspension revokes the credential at once and the provider stops taking patients', async () => {
    await api(t.url, 'POST', `/v1/providers/${OTHER_SELF}/suspend`, { token: rosterAdmin });
    assert.equal((await api(t.url, 'GET', `/v1/providers/${otherRegistrationId}/heartbeat`, { token: otherCredential })).status, 401);
    assert.equal(await getActiveProvider(t.neuron.storage.db, OTHER_SELF), null);
    await assert.rejects(connectPatient(t.handshakeUrl, OTHER_SELF), (error: { code?: string }) => error.code === 'PROVIDER_NOT_FOUND');

    // Reinstated with a new credential; the old one stays dead.
    const again = await api(t.url, 'POST', `/v1/providers/${OTHER_SELF}/approve`, { token: rosterAdmin });
    assert.equal(again.status, 200);
    assert.notEqual(again.body.credential, otherCredential);
    assert.equal((await api(t.url, 'GET', `/v1/providers/${otherRegistrationId}/heartbeat`, { token: otherCredential })).status, 401);
    assert.equal((await api(t.url, 'GET', `/v1/providers/${otherRegistrationId}/heartbeat`, { token: again.body.credential })).status, 200);
  });

  test('setting a notification URL sends the notices the provider has not pulled', async () => {
    const { startReceiver } = await import('../../../test/helpers/providers.ts');
    const hook = await startReceiver();
    try {
      const patient = await connectPatient(t.handshakeUrl, OTHER_SELF, ['office_visit'], 'later');
      const held = await t.neuron.storage.db
        .selectFrom('outbox')
        .selectAll()
        .where('target', '=', OTHER_SELF)
        .where('status', '=', 'pending')
        .execute();
      assert.ok(held.length >= 1);
      // Written already held by the handshake's own transaction: due only after one hold, no attempt spent, the reason recorded.
      const notice = held.find((row) => row.body.includes(patient.patientAgentId));
      assert.ok(notice, 'the new relationship has its notice');
      assert.equal(notice.attempts, 0);
      assert.ok(notice.next_attempt_at > new Date().toISOString(), 'not due before the hold ends');
      assert.match(notice.last_error ?? '', /pull/);
      await waitFor('held for pulling', async () =>
        (
          (
            await t.neuron.storage.db
              .selectFrom('outbox')
              .select('last_error')
              .where('target', '=', OTHER_SELF)
              .where('status', '=', 'pending')
              .executeTakeFirst()
          )?.last_error ?? ''
        ).includes('pull'),
      );
      assert.equal(
        (await api(t.url, 'PATCH', `/v1/providers/${OTHER_SELF}`, { token: rosterAdmin, body: { notification_url: `${hook.url}/n` } }))
          .status,
        200,
      );
      await waitFor('the held notice is pushed', () => hook.accepted().some((r) => r.body.includes(patient.patientAgentId)));
    } finally {
      await hook.close();
    }
  });
});
