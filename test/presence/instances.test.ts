/**
 * Several Neuron instances on one PostgreSQL share one registration: only the instance holding
 * the registry lease registers and heartbeats, and when it stops another takes over with the same
 * registration (no second POST /v1/neurons). Registered only when NEURON_TEST_POSTGRES_URL is set
 * (see test/helpers/databases.ts); start a throwaway server with `bash scripts/postgres-test-server.sh`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeRegistry, type FakeRegistry } from '../fakes/fake-registry.ts';
import { testDatabases, type TestDatabase } from '../helpers/databases.ts';
import { DR_ONE, HEARTBEATS, NEURON_POSTS, PROVIDER_POSTS, count, insertProvider, startNeuron, type Harness } from './harness.ts';
import { waitFor } from '../helpers/wait.ts';

for (const backend of testDatabases().filter((b) => b.name === 'postgres')) {
  describe('registry presence of several instances on one PostgreSQL', () => {
    let fake: FakeRegistry;
    let database: TestDatabase;
    const harnesses: Harness[] = [];

    before(async () => {
      fake = await startFakeRegistry();
      database = await backend.open();
    });
    after(async () => {
      await Promise.all(harnesses.map((h) => h.cleanup()));
      await database.close();
      await fake.close();
    });

    it('registers once, heartbeats from one instance, and hands over on stop with the same registration', async () => {
      const extra = { storage: { url: database.options.url } };
      const first = await startNeuron(fake, extra);
      harnesses.push(first);
      const second = await startNeuron(fake, extra);
      harnesses.push(second);
      await insertProvider(first.neuron, DR_ONE);

      await waitFor('registered', async () => (await first.neuron.presence.registryStatus()).state === 'registered');
      await waitFor('provider listed', () => fake.providers.has(DR_ONE));
      const beats = count(fake, 'PUT', HEARTBEATS);
      await waitFor('heartbeats', () => count(fake, 'PUT', HEARTBEATS) >= beats + 3);
      assert.equal(count(fake, 'POST', NEURON_POSTS), 1, 'one registration for both instances');
      assert.equal(count(fake, 'POST', PROVIDER_POSTS), 1);
      const running = [first, second].filter((h) => h.neuron.presence.liveRegistryStatus() !== null);
      assert.equal(running.length, 1, 'exactly one instance runs the registry client');
      const leader = running[0]!;
      const follower = leader === first ? second : first;
      const id = [...fake.neurons.values()][0]?.registrationId;

      // The follower shows the shared registration from the database.
      const seen = await follower.neuron.presence.registryStatus();
      assert.equal(seen.state, 'registered');
      assert.equal(seen.registration_id, id);
      await waitFor('follower summary', () => follower.neuron.presence.registrySummary().state === 'registered');

      // The leader stops; the other instance takes over with the same registration.
      await leader.neuron.stop();
      await waitFor('takeover', () => follower.neuron.presence.liveRegistryStatus()?.state === 'registered');
      const after = count(fake, 'PUT', HEARTBEATS);
      await waitFor('heartbeats from the new leader', () => count(fake, 'PUT', HEARTBEATS) > after);
      assert.equal(count(fake, 'POST', NEURON_POSTS), 1, 'no second registration');
      assert.equal((await follower.neuron.presence.registryStatus()).registration_id, id);
      assert.equal(count(fake, 'POST', PROVIDER_POSTS), 1, 'the provider state is shared too');
      assert.ok(follower.logs.some((line) => line.includes('this instance now runs the registry client')));
    });
  });
}
