/**
 * Two Neuron processes on one PostgreSQL database behave as one Neuron (docs/deployment.md,
 * "Several instances on PostgreSQL"): racing handshakes make one relationship, every provider
 * notice reaches the provider, the audit chain stays one verifiable chain, API keys and blocks made
 * through one instance count on the other at once, a kill -9 loses nothing that was confirmed to
 * a patient, and only one instance heartbeats to the registry.
 *
 * Each instance is its own `node bin/neuron.js start` process with its own data directory and
 * port, the same storage.url (a database created for this file and dropped after it) and the same
 * organization. Runs only when NEURON_TEST_POSTGRES_URL is set (start a throwaway server with
 * `export "$(bash scripts/postgres-test-server.sh)"`); otherwise the runner reports it skipped, with why.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError, type RelationshipResult } from 'neuron-careagent-client';
import { POSTGRES_URL_VARIABLE, skipWithoutPostgres } from '../helpers/databases.ts';
import { runNeuronCli } from '../helpers/cli.ts';
import { startFakeRegistry, type FakeRegistry } from '../fakes/fake-registry.ts';
import {
  api,
  cleanupInstances,
  createFreshDatabase,
  handshake,
  instanceConfig,
  makePatient,
  PROVIDER_NPI,
  startInstance,
  startProviderStub,
  type FreshDatabase,
  type Instance,
  type Patient,
  type ProviderStub,
} from './cluster.ts';
import { waitFor } from '../helpers/wait.ts';

const BASE_URL = process.env[POSTGRES_URL_VARIABLE] ?? '';

// These tests need a PostgreSQL server that two Neuron processes share.
if (!skipWithoutPostgres('PostgreSQL multi-instance suite')) {
  registerSharedDatabaseSuite(BASE_URL);
  // The registry client is leader-elected across instances (composition/steps.ts, the presence step).
  registerHeartbeatSuite(BASE_URL);
}

function codeOf(error: unknown): string {
  return error instanceof HandshakeError ? String(error.code) : `UNEXPECTED:${(error as Error).message}`;
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

function registerSharedDatabaseSuite(baseUrl: string): void {
  describe('two Neuron processes on one PostgreSQL database', () => {
    let database: FreshDatabase;
    let stub: ProviderStub;
    let a: Instance;
    let b: Instance;
    const instances: Instance[] = [];
    let organizationKey: string;

    before(async () => {
      database = await createFreshDatabase(baseUrl);
      stub = await startProviderStub();
      const config = instanceConfig(database.url, stub.url);
      // Started at once: both migrate, create the organization key and seed the provider on an
      // empty database; the advisory locks and unique indexes must sort it out.
      const started = await Promise.allSettled([startInstance('a', config), startInstance('b', config)]);
      for (const result of started) if (result.status === 'fulfilled') instances.push(result.value);
      const failed = started.find((result) => result.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      [a, b] = instances as [Instance, Instance];
    });

    after(async () => {
      await cleanupInstances(instances);
      await stub?.close();
      await database?.drop();
    });

    it('both instances sign with the one organization key and serve the one roster', async () => {
      const keys = await database.query<{ public_key: string }>('SELECT public_key FROM organization_keys WHERE active = 1');
      assert.equal(keys.length, 1, 'one active organization key, though both instances started on an empty database at once');
      organizationKey = keys[0]!.public_key;
      stub.trustKey(organizationKey);
      // The client pins the key: an attestation signed with any other fails the handshake.
      const [fromA, fromB] = await Promise.all([
        handshake(a, makePatient('key-a'), organizationKey),
        handshake(b, makePatient('key-b'), organizationKey),
      ]);
      assert.equal(fromA.neuronPublicKey, organizationKey);
      assert.equal(fromB.neuronPublicKey, organizationKey);
      const providers = await database.query<{ npi: string; status: string }>('SELECT npi, status FROM providers');
      assert.deepEqual(providers, [{ npi: PROVIDER_NPI, status: 'active' }], 'the config seed was applied once');
    });

    it('the same patient handshaking on both instances at once gets one relationship: one new, the rest existing', async () => {
      const ROUNDS = 5; // patients, each raced from scratch
      const REPEATS = 2; // concurrent waves per patient: the first races for `new`, the next finds it
      const PER_INSTANCE = 3; // handshakes per instance per wave
      for (let round = 0; round < ROUNDS; round++) {
        const patient = makePatient(`race${round}`);
        const results: RelationshipResult[] = [];
        for (let wave = 0; wave < REPEATS; wave++) {
          const targets = Array.from({ length: PER_INSTANCE * 2 }, (_, i) => (i % 2 === 0 ? a : b));
          results.push(...(await Promise.all(targets.map((instance) => handshake(instance, patient, organizationKey)))));
        }
        const statuses = countBy(results, (r) => r.status);
        assert.deepEqual(statuses, { new: 1, existing: REPEATS * PER_INSTANCE * 2 - 1 }, `round ${round}: one new, the rest existing`);
        const ids = new Set(results.map((r) => r.relationshipId));
        assert.equal(ids.size, 1, `round ${round}: every handshake answered the same relationship id`);
        const rows = await database.query<{ id: string; status: string }>(
          'SELECT id, status FROM relationships WHERE patient_agent_id = $1',
          [patient.agentId],
        );
        assert.deepEqual(rows, [{ id: [...ids][0], status: 'active' }], `round ${round}: exactly one relationship row`);
        const notices = await database.query<{ n: string }>(
          `SELECT count(*) AS n FROM outbox WHERE kind = 'provider.relationship' AND (body::json ->> 'patient_agent_id') = $1`,
          [patient.agentId],
        );
        assert.equal(Number(notices[0]!.n), 1, `round ${round}: one provider notice, for the one new relationship`);
      }
    });

    it('many patients split across both instances: every provider notice reaches the provider, none twice', async () => {
      const PATIENTS = 80;
      const CONCURRENCY_PER_INSTANCE = 8;
      const patients = Array.from({ length: PATIENTS }, (_, i) => makePatient(`many${i}`));
      const queues: Array<[Instance, Patient[]]> = [
        [a, patients.filter((_, i) => i % 2 === 0)],
        [b, patients.filter((_, i) => i % 2 === 1)],
      ];
      const results: RelationshipResult[] = [];
      const failures: string[] = [];
      await Promise.all(
        queues.flatMap(([instance, queue]) =>
          Array.from({ length: CONCURRENCY_PER_INSTANCE }, async () => {
            for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
              try {
                results.push(await handshake(instance, next, organizationKey));
              } catch (error) {
                failures.push(`${instance.name}: ${codeOf(error)}`);
              }
            }
          }),
        ),
      );
      assert.deepEqual(failures, []);
      assert.equal(results.length, PATIENTS);
      assert.ok(results.every((r) => r.status === 'new'));

      const expected = async (): Promise<string[]> =>
        (await database.query<{ event_id: string }>(`SELECT event_id FROM outbox WHERE kind = 'provider.relationship'`)).map(
          (row) => row.event_id,
        );
      await waitFor('every provider notice delivered', async () => {
        const pending = await database.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE status <> 'delivered'`);
        return Number(pending[0]!.n) === 0;
      });
      const events = await expected();
      const relationships = await database.query<{ n: string }>('SELECT count(*) AS n FROM relationships');
      assert.equal(events.length, Number(relationships[0]!.n), "one notice per relationship made (these and the earlier tests')");
      const received = stub.eventIds();
      const lost = events.filter((id) => !received.has(id));
      assert.deepEqual(lost, [], 'no notice lost');
      const duplicates = stub.duplicates();
      console.log(
        `multi-instance: ${events.length} provider notices, ${stub.notices.length} deliveries, ${duplicates.size} event ids delivered more than once`,
      );
      assert.equal(duplicates.size, 0, `no event delivered twice without a crash: ${JSON.stringify([...duplicates])}`);
      for (const notice of stub.notices) {
        assert.equal(notice.bodyEventId, notice.eventId, "the header names the signed body's event");
        assert.ok(notice.signatureValid, 'signed with the organization key');
        assert.equal(notice.senderKey, organizationKey);
      }
      const byRelationship = new Set(stub.notices.map((n) => n.relationshipId));
      for (const result of results) assert.ok(byRelationship.has(result.relationshipId), 'the provider heard of every relationship');
    });

    it('an API key created through A works on B, its revocation through A refuses it on B at once; a block through A refuses on B', async () => {
      // The first admin key through the CLI against A's configuration (the shared database).
      const created = await runNeuronCli(a.configFile, ['api-key', 'create', '--label', 'mi-admin', '--scopes', 'admin', '--json']);
      assert.equal(created.code, 0, created.stderr);
      const admin = String((JSON.parse(created.stdout) as { key: string }).key);

      const made = await api(a, 'POST', '/v1/api-keys', admin, { label: 'mi-reader', scopes: ['read'] });
      assert.equal(made.status, 201, JSON.stringify(made.json));
      const reader = String(made.json['key']);
      const readerId = String(made.json['id']);
      assert.equal((await api(b, 'GET', '/v1/relationships?limit=1', reader)).status, 200, 'B accepts a key made through A');

      const revoked = await api(a, 'DELETE', `/v1/api-keys/${readerId}`, admin);
      assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
      assert.equal((await api(b, 'GET', '/v1/relationships?limit=1', reader)).status, 401, 'B refuses the revoked key on its next request');
      assert.equal((await api(a, 'GET', '/v1/relationships?limit=1', reader)).status, 401);

      // A patient with a relationship and one never seen, both blocked through A.
      const known = makePatient('block-known');
      const first = await handshake(b, known, organizationKey);
      assert.equal(first.status, 'new');
      const stranger = makePatient('block-stranger');
      for (const patient of [known, stranger]) {
        const blocked = await api(a, 'POST', '/v1/blocks', admin, {
          patient_agent_id: patient.agentId,
          reason: 'synthetic multi-instance test',
        });
        assert.equal(blocked.status, 201, JSON.stringify(blocked.json));
      }
      for (const patient of [known, stranger]) {
        await assert.rejects(
          handshake(b, patient, organizationKey),
          (error: unknown) => codeOf(error) === 'BLOCKED',
          'B refuses a patient blocked through A',
        );
        await assert.rejects(handshake(a, patient, organizationKey), (error: unknown) => codeOf(error) === 'BLOCKED');
      }
      const rows = await database.query<{ status: string }>('SELECT status FROM relationships WHERE patient_agent_id = $1', [
        known.agentId,
      ]);
      assert.deepEqual(rows, [{ status: 'suspended' }], 'the block suspended the relationship');
    });

    it('kill -9 of one instance mid-run: every confirmed relationship exists, the survivor delivers every pending notice', {
      timeout: 60_000,
    }, async () => {
      const victim = b;
      const survivor = a;
      const confirmed: Array<{ instance: string; patient: string; relationshipId: string }> = [];
      const failures: string[] = [];
      const MAX_PER_INSTANCE = 400; // bounds the run whatever happens
      const WORKERS_PER_INSTANCE = 6;
      let stopping = false;
      const drive = (instance: Instance) => async (): Promise<void> => {
        for (let i = 0; i < MAX_PER_INSTANCE / WORKERS_PER_INSTANCE && !stopping && instance.alive; i++) {
          const patient = makePatient(`kill-${instance.name}`);
          try {
            const result = await handshake(instance, patient, organizationKey);
            confirmed.push({ instance: instance.name, patient: patient.agentId, relationshipId: result.relationshipId });
          } catch (error) {
            failures.push(`${instance.name}: ${codeOf(error)}`);
          }
        }
      };
      // A slow provider keeps deliveries in flight, so the victim dies holding a leased notice.
      stub.setDelay(400);
      const deliveredBefore = stub.notices.length;
      const workers = [survivor, victim].flatMap((instance) => Array.from({ length: WORKERS_PER_INSTANCE }, drive(instance)));
      const running = Promise.all(workers);
      const confirmedOn = (name: string): number => confirmed.filter((c) => c.instance === name).length;

      let leasedByVictim: string[] = [];
      try {
        await waitFor('handshakes confirmed by the victim', () => confirmedOn(victim.name) >= 30, 30_000);
        // Kill while the victim holds a notice lease (it claims the next as soon as one is done).
        const leased = async (): Promise<string[]> =>
          (
            await database.query<{ event_id: string }>(`SELECT event_id FROM outbox WHERE status = 'pending' AND locked_by = $1`, [
              victim.instanceId,
            ])
          ).map((row) => row.event_id);
        // A lease first seen in this poll was taken at most one poll (about 50 ms) ago, so the victim is
        // still inside the stub's 400 ms delivery when the kill lands: an older lease may end meanwhile.
        let seen = new Set(await leased());
        await waitFor(
          'a notice newly leased by the victim',
          async () => {
            const now = await leased();
            const fresh = now.some((id) => !seen.has(id));
            seen = new Set(now);
            return fresh;
          },
          15_000,
        );
        await victim.kill();
        leasedByVictim = await leased();
        const survivorBefore = confirmedOn(survivor.name);
        await waitFor('the survivor keeps completing handshakes', () => confirmedOn(survivor.name) >= survivorBefore + 30, 30_000);
      } finally {
        stopping = true;
        await running;
      }
      stub.setDelay(0);
      assert.ok(confirmed.length >= 90, 'the run went on long enough to mean something');
      assert.ok(leasedByVictim.length >= 1, 'the victim died holding a notice lease');

      // Every relationship a patient was told about exists, active, for that patient.
      const ids = confirmed.map((c) => c.relationshipId);
      const rows = await database.query<{ id: string; patient_agent_id: string; status: string }>(
        'SELECT id, patient_agent_id, status FROM relationships WHERE id = ANY($1::text[])',
        [ids],
      );
      const byId = new Map(rows.map((row) => [row.id, row]));
      for (const c of confirmed) {
        const row = byId.get(c.relationshipId);
        assert.ok(row, `relationship ${c.relationshipId} confirmed by ${c.instance} exists`);
        assert.equal(row.patient_agent_id, c.patient);
        assert.equal(row.status, 'active');
      }
      // Failures are only those of the victim's connections (cut mid-handshake, then refused).
      const unexpected = failures.filter((f) => !f.startsWith(`${victim.name}: `));
      assert.deepEqual(unexpected, [], 'the survivor failed no handshake');

      // The survivor delivers everything, including the notice the victim had leased (after its lease runs out).
      const tookOverMs = await waitFor(
        'every notice delivered by the survivor',
        async () => {
          const pending = await database.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE status <> 'delivered'`);
          return Number(pending[0]!.n) === 0;
        },
        30_000,
      );
      const events = await database.query<{ event_id: string; body: string }>(
        `SELECT event_id, body FROM outbox WHERE kind = 'provider.relationship'`,
      );
      const received = stub.eventIds();
      assert.deepEqual(
        events.filter((e) => !received.has(e.event_id)).map((e) => e.event_id),
        [],
        'no notice lost',
      );
      for (const id of leasedByVictim) assert.ok(received.has(id), 'the notice leased by the victim was delivered after the takeover');
      const noticed = new Set(events.map((e) => (JSON.parse(e.body) as { relationship_id: string }).relationship_id));
      for (const c of confirmed) assert.ok(noticed.has(c.relationshipId), 'every confirmed relationship has its provider notice');

      const duplicates = stub.duplicates();
      const run = stub.notices.slice(deliveredBefore);
      console.log(
        `multi-instance kill -9: ${confirmed.length} handshakes confirmed (${confirmedOn(victim.name)} by the victim), ` +
          `victim failures ${JSON.stringify(countBy(failures, (f) => f))}, ${leasedByVictim.length} notice(s) leased by the victim, ` +
          `all delivered ${tookOverMs} ms after the load stopped; ${run.length} deliveries in this run, ` +
          `${duplicates.size} event id(s) received more than once (at-least-once: a delivery cut by the kill is repeated)`,
      );
      // A duplicate can only be a delivery the victim started and never saw answered.
      for (const [eventId] of duplicates) {
        assert.ok(leasedByVictim.includes(eventId), `duplicate ${eventId} is a delivery cut by the kill`);
        assert.ok(
          stub.notices.filter((n) => n.eventId === eventId).some((n) => n.answered),
          'and it was answered once it was retried',
        );
      }
    });

    it('the audit chain written by both instances (and the killed one) verifies', async () => {
      const verified = await runNeuronCli(a.configFile, ['audit', 'verify', '--json']);
      assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
      const instanceIds = await database.query<{ id: string }>(
        `SELECT DISTINCT (details::json ->> 'instance_id') AS id FROM audit_log WHERE event_type = 'neuron.started'`,
      );
      assert.deepEqual(
        instanceIds.map((r) => r.id).sort(),
        [a.instanceId, b.instanceId].sort(),
        'both instances appended to the one chain',
      );
      // And after the survivor's clean stop (its last entry and signed checkpoint).
      assert.equal(await a.stop(), 0);
      const again = await runNeuronCli(b.configFile, ['audit', 'verify']);
      assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    });
  });
}

function registerHeartbeatSuite(baseUrl: string): void {
  describe('registry heartbeat from two instances on one PostgreSQL database', () => {
    const HEARTBEAT_INTERVAL_MS = 3_000; // the smallest interval the registry lease honours exactly (MIN_REGISTRY_LEASE_BASIS_MS)
    let database: FreshDatabase;
    let fake: FakeRegistry;
    const instances: Instance[] = [];

    before(async () => {
      database = await createFreshDatabase(baseUrl);
      fake = await startFakeRegistry();
    });

    after(async () => {
      await cleanupInstances(instances);
      await fake?.close();
      await database?.drop();
    });

    it('only one instance heartbeats; after kill -9 of it the other takes over within about one heartbeat interval', {
      timeout: 60_000,
    }, async () => {
      // server.public_url is left empty so that each instance announces its own bound address:
      // that tells the fake registry which instance sent a heartbeat.
      const config = instanceConfig(database.url, null, {
        registry: {
          enabled: true,
          url: fake.url,
          heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
          request_timeout_ms: 1_000,
          backoff_initial_ms: 50,
          backoff_max_ms: 500,
        },
      });
      const started = await Promise.allSettled([startInstance('a', config), startInstance('b', config)]);
      for (const result of started) if (result.status === 'fulfilled') instances.push(result.value);
      const failed = started.find((result) => result.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;

      const heartbeats = (): Array<{ at: number; port: string }> =>
        fake.requests
          .filter((r) => r.method === 'PUT' && /^\/v1\/neurons\/[^/]+\/endpoint$/.test(r.path))
          .map((r) => ({ at: r.at, port: new URL(String((r.body as { neuron_endpoint_url?: string }).neuron_endpoint_url)).port }));
      const portOf = (instance: Instance): string => new URL(instance.url).port;
      const registrations = (): number => fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/neurons').length;

      await waitFor('three heartbeats', () => heartbeats().length >= 3, 30_000);
      const senders = new Set(heartbeats().map((h) => h.port));
      assert.equal(senders.size, 1, `one instance heartbeats: ${JSON.stringify(heartbeats())}`);
      const leader = instances.find((i) => senders.has(portOf(i)))!;
      const follower = instances.find((i) => i !== leader)!;
      assert.ok(leader, 'the heartbeats come from one of the two instances');
      const lease = await database.query<{ holder: string }>(`SELECT holder FROM leases WHERE name = 'registry-heartbeat'`);
      assert.deepEqual(lease, [{ holder: leader.instanceId }], 'the heartbeating instance holds the registry lease');
      assert.equal(registrations(), 1, 'one registration for both instances');

      const beatsBeforeKill = heartbeats().length;
      await leader.kill();
      const killedAt = Date.now();
      await waitFor(
        'a heartbeat from the other instance',
        () =>
          heartbeats()
            .slice(beatsBeforeKill)
            .some((h) => h.port === portOf(follower)),
        20_000,
      );
      const first = heartbeats()
        .slice(beatsBeforeKill)
        .find((h) => h.port === portOf(follower))!;
      const takeoverMs = first.at - killedAt;
      console.log(
        `multi-instance registry: heartbeat interval ${HEARTBEAT_INTERVAL_MS} ms; the follower's first heartbeat came ${takeoverMs} ms after the leader was killed`,
      );
      // About one heartbeat interval (lease ttl + renew interval = the interval), with a generous margin.
      assert.ok(takeoverMs <= 2 * HEARTBEAT_INTERVAL_MS, `takeover within about one heartbeat interval (took ${takeoverMs} ms)`);
      const holder = await database.query<{ holder: string }>(`SELECT holder FROM leases WHERE name = 'registry-heartbeat'`);
      assert.deepEqual(holder, [{ holder: follower.instanceId }]);

      // The new leader keeps heartbeating with the same registration; nobody registers again.
      const count = heartbeats().length;
      await waitFor('the next heartbeat of the new leader', () => heartbeats().length > count, 3 * HEARTBEAT_INTERVAL_MS);
      const since = heartbeats().filter((h) => h.at > killedAt);
      assert.ok(
        since.every((h) => h.port === portOf(follower)),
        'after the kill only the survivor heartbeats',
      );
      assert.equal(registrations(), 1, 'no second registration');
    });
  });
}
