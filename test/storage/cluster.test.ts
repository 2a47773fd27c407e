/**
 * Leases and leader election (src/network/cluster) on every backend: one holder at a time, decided by the
 * database even when instances race; expiry by the database's clock; a leader that dies is
 * replaced within ttl + renew interval; a leader that stops hands over at once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaderElector, LeaseStore, leaseTimingFor } from '../../src/network/cluster/index.ts';
import { openStorage, type Storage } from '../../src/foundation/storage/index.ts';
import { testDatabases } from '../helpers/databases.ts';
import { waitFor } from '../helpers/wait.ts';

describe('leaseTimingFor', () => {
  it('keeps ttl + renew interval within the job interval, renewing three times per ttl', () => {
    for (const interval of [100, 1_000, 60_000]) {
      const { ttlMs, renewIntervalMs } = leaseTimingFor(interval);
      assert.ok(ttlMs + renewIntervalMs <= interval, `${interval}: ${ttlMs} + ${renewIntervalMs}`);
      assert.ok(renewIntervalMs * 3 <= ttlMs, `${interval}: renews at least three times per ttl`);
    }
  });
});

for (const backend of testDatabases()) {
  describe(`leases (${backend.name})`, () => {
    it('one holder at a time; the holder renews; others see who holds it', async (t) => {
      const { storage } = await backend.open(t);
      const leases = new LeaseStore(storage);
      const a = await leases.acquireOrRenew('heartbeat', 'instance-a', 10_000);
      assert.equal(a.held, true);
      assert.equal(a.holder, 'instance-a');
      assert.match(a.expiresAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const b = await leases.acquireOrRenew('heartbeat', 'instance-b', 10_000);
      assert.deepEqual(b, { held: false, holder: 'instance-a', expiresAt: a.expiresAt });
      await sleep(5);
      const renewed = await leases.acquireOrRenew('heartbeat', 'instance-a', 10_000);
      assert.equal(renewed.held, true);
      assert.ok(renewed.expiresAt! > a.expiresAt!, 'renewal moves the expiry forward');
      // Names are independent.
      assert.equal((await leases.acquireOrRenew('sweeper', 'instance-b', 10_000)).held, true);
      assert.deepEqual(await leases.current('heartbeat'), { holder: 'instance-a', expiresAt: renewed.expiresAt });
    });

    it('an expired lease can be taken by another; the old holder then cannot renew', async (t) => {
      const { storage } = await backend.open(t);
      const leases = new LeaseStore(storage);
      assert.equal((await leases.acquireOrRenew('heartbeat', 'instance-a', 100)).held, true);
      assert.equal((await leases.acquireOrRenew('heartbeat', 'instance-b', 100)).held, false);
      await sleep(250); // generous beside the 100 ms lease
      assert.equal(await leases.current('heartbeat'), null, 'expired means nobody holds it');
      assert.equal((await leases.acquireOrRenew('heartbeat', 'instance-b', 10_000)).held, true);
      const late = await leases.acquireOrRenew('heartbeat', 'instance-a', 10_000);
      assert.equal(late.held, false);
      assert.equal(late.holder, 'instance-b');
    });

    it('release hands the lease over at once, and only by its holder', async (t) => {
      const { storage } = await backend.open(t);
      const leases = new LeaseStore(storage);
      await leases.acquireOrRenew('heartbeat', 'instance-a', 60_000);
      assert.equal(await leases.release('heartbeat', 'instance-b'), false);
      assert.equal((await leases.acquireOrRenew('heartbeat', 'instance-b', 60_000)).held, false);
      assert.equal(await leases.release('heartbeat', 'instance-a'), true);
      assert.equal((await leases.acquireOrRenew('heartbeat', 'instance-b', 60_000)).held, true);
    });

    it('instances racing for a free lease: exactly one gets it', async (t) => {
      const database = await backend.open(t);
      const instances: Storage[] =
        database.backend === 'postgres'
          ? [database.storage, ...(await Promise.all([1, 2, 3].map(() => database.openPeer({ poolMax: 4 }))))]
          : [database.storage];
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) =>
            new LeaseStore(instances[i % instances.length]!).acquireOrRenew(`job-${round}`, `instance-${i}`, 60_000),
          ),
        );
        const winners = results.filter((r) => r.held);
        assert.equal(winners.length, 1, `round ${round}`);
        for (const r of results) assert.equal(r.holder, winners[0]!.holder, 'everyone agrees who won');
      }
    });

    it('refuses nonsense arguments', async (t) => {
      const { storage } = await backend.open(t);
      const leases = new LeaseStore(storage);
      await assert.rejects(leases.acquireOrRenew('', 'a', 1_000), RangeError);
      await assert.rejects(leases.acquireOrRenew('x', 'a', 0), RangeError);
      await assert.rejects(leases.acquireOrRenew('x', 'a', 1.5), RangeError);
      await assert.rejects(leases.acquireOrRenew('x', 'a'.repeat(201), 1_000), RangeError);
    });
  });

  describe(`leader election (${backend.name})`, () => {
    it('one leader among several; when it stops, another takes over within one renew interval', async (t) => {
      const database = await backend.open(t);
      const events: string[] = [];
      const electors = await Promise.all(
        ['a', 'b', 'c'].map(async (id) => {
          const storage = database.backend === 'postgres' ? await database.openPeer({ poolMax: 2 }) : database.storage;
          return new LeaderElector({
            storage,
            name: 'registry-heartbeat',
            holder: `instance-${id}`,
            ttlMs: 600,
            renewIntervalMs: 100,
            onElected: () => void events.push(`elected ${id}`),
            onDeposed: () => void events.push(`deposed ${id}`),
          });
        }),
      );
      t.after(() => Promise.all(electors.map((e) => e.stop())));
      await Promise.all(electors.map((e) => e.start()));
      await waitFor('a leader', () => electors.some((e) => e.isLeader));
      await sleep(300); // several renewals: leadership stays put
      assert.equal(electors.filter((e) => e.isLeader).length, 1);
      const leader = electors.find((e) => e.isLeader)!;
      assert.deepEqual(events, [`elected ${leader.holder.slice(-1)}`]);

      const stoppedAt = Date.now();
      await leader.stop();
      assert.equal(leader.isLeader, false);
      await waitFor('a new leader', () => electors.some((e) => e.isLeader));
      // The lease was released, so the next renewal round (100 ms) picks a new leader; well
      // before the 600 ms ttl would have run out.
      assert.ok(Date.now() - stoppedAt < 600, `handed over in ${Date.now() - stoppedAt} ms`);
      assert.equal(electors.filter((e) => e.isLeader).length, 1);
      assert.equal(events[1], `deposed ${leader.holder.slice(-1)}`, 'the old leader stepped down before the new one was elected');
      assert.match(events[2] ?? '', /^elected [abc]$/);
    });

    it('a leader that dies (stops renewing without releasing) is replaced after its lease runs out', async (t) => {
      const database = await backend.open(t);
      const peer = database.backend === 'postgres' ? await database.openPeer({ poolMax: 2 }) : database.storage;
      // The "dead" leader: holds the lease, then never renews.
      const leases = new LeaseStore(database.storage);
      assert.equal((await leases.acquireOrRenew('registry-heartbeat', 'instance-dead', 400)).held, true);
      let electedAt = 0;
      const follower = new LeaderElector({
        storage: peer,
        name: 'registry-heartbeat',
        holder: 'instance-follower',
        ttlMs: 400,
        renewIntervalMs: 100,
        onElected: () => {
          electedAt = Date.now();
        },
      });
      t.after(() => follower.stop());
      const started = Date.now();
      await follower.start();
      assert.equal(follower.isLeader, false, 'not while the lease is live');
      await waitFor('takeover', () => follower.isLeader);
      const took = electedAt - started;
      assert.ok(took >= 250 && took < 2_000, `took over after ${took} ms (lease 400 ms + renew 100 ms)`);
    });

    it('a leader that cannot reach the database steps down when its lease would have run out', async (t) => {
      const database = await backend.open(t);
      // A storage of our own, so closing it (the "outage") does not affect the test's cleanup.
      const own = await openStorage(database.options);
      const errors: unknown[] = [];
      let deposedAt = 0;
      const elector = new LeaderElector({
        storage: own,
        name: 'registry-heartbeat',
        holder: 'instance-a',
        ttlMs: 400,
        renewIntervalMs: 100,
        onDeposed: () => {
          deposedAt = Date.now();
        },
        onError: (error) => errors.push(error),
      });
      t.after(() => elector.stop());
      await elector.start();
      assert.equal(elector.isLeader, true);
      const cutAt = Date.now();
      await own.close(); // every renewal from now on fails
      await waitFor('stepping down', () => !elector.isLeader);
      assert.ok(errors.length >= 1, 'renewal failures were reported');
      // Its deadline counts from before its last renewal reached the database, so it steps down
      // no later than the lease runs out there (the margin is only for a busy test machine).
      assert.ok(deposedAt - cutAt <= 400 + 200, `stepped down ${deposedAt - cutAt} ms after the outage began`);
      // Soon after, the lease has run out in the database too and another instance takes it.
      await sleep(150);
      assert.equal((await new LeaseStore(database.storage).acquireOrRenew('registry-heartbeat', 'instance-b', 1_000)).held, true);
    });

    it('callback failures are reported and do not stop the election', async (t) => {
      const { storage } = await backend.open(t);
      const errors: string[] = [];
      const elector = new LeaderElector({
        storage,
        name: 'job',
        holder: 'instance-a',
        ttlMs: 300,
        renewIntervalMs: 50,
        onElected: () => {
          throw new Error('heartbeat start failed');
        },
        onError: (error) => errors.push((error as Error).message),
      });
      t.after(() => elector.stop());
      await elector.start();
      assert.equal(elector.isLeader, true);
      assert.deepEqual(errors, ['heartbeat start failed']);
      await sleep(200);
      assert.equal(elector.isLeader, true, 'still renewing');
      await elector.stop();
      assert.equal(await new LeaseStore(storage).current('job'), null, 'released on stop');
    });

    it('refuses a renew interval that is not below the ttl', () => {
      assert.throws(
        () =>
          new LeaderElector({
            storage: { db: null as never, dialect: 'sqlite' },
            name: 'x',
            holder: 'a',
            ttlMs: 100,
            renewIntervalMs: 100,
          }),
        RangeError,
      );
    });
  });
}
