/**
 * The handshake's facts on every backend, each asked of the domain that owns its table
 * (providers/, blocks/, directory/) and composed by src/domains/handshake/store.ts: read in a
 * transaction and on the shared handle alike, so the prepared statements run on both dialects.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readHandshakeFacts } from '../../src/domains/handshake/store.ts';
import { insertProvider } from '../../src/domains/providers/store.ts';
import { blockKeysOf, insertBlock } from '../../src/domains/blocks/store.ts';
import { upsertFromHandshake } from '../../src/domains/directory/store.ts';
import type { Db } from '../../src/foundation/storage/index.ts';
import { testDatabases } from '../helpers/databases.ts';

const AT = '2026-12-03T16:00:00.000Z';
const PUSHING = '1245319599';
const PULLING = '1679576722';
const PENDING = '1376841239';
const UNKNOWN = '1003000126';
const KEY = 'K'.repeat(43);
const OTHER_KEY = 'L'.repeat(43);

async function addProvider(db: Db, npi: string, status: 'active' | 'pending', notificationUrl: string | null): Promise<void> {
  await insertProvider(
    db,
    {
      npi,
      name: 'Test Provider',
      providerTypes: ['physician'],
      specialty: null,
      credentials: [],
      status,
      providerEndpoint: `https://${npi}.example/agent`,
      providerPublicKey: null,
      notificationUrl,
      registration: null,
    },
    AT,
  );
}

for (const backend of testDatabases()) {
  describe(`handshake facts (${backend.name})`, () => {
    it('the provider, the block and the directory entry each come from their owner', async (t) => {
      const { storage } = await backend.open(t);
      await addProvider(storage.db, PUSHING, 'active', 'https://notify.example/n');
      await addProvider(storage.db, PULLING, 'active', null);
      await addProvider(storage.db, PENDING, 'pending', 'https://notify.example/n');
      const facts = (db: Db, npi: string, agent: string, key = KEY) => readHandshakeFacts(db, npi, agent, key);

      assert.deepEqual(await facts(storage.db, PUSHING, 'agent-new'), {
        provider: { npi: PUSHING, endpoint: `https://${PUSHING}.example/agent`, publicKey: null },
        providerPushes: true,
        blocked: false,
        knownPatient: false,
        directoryKey: null,
      });
      assert.equal((await facts(storage.db, PULLING, 'agent-new')).providerPushes, false, 'no notification_url: pulled');
      assert.deepEqual(
        await facts(storage.db, PENDING, 'agent-new'),
        { provider: null, providerPushes: false, blocked: false, knownPatient: false, directoryKey: null },
        'a pending provider is not active, and its notices are neither pushed nor pulled',
      );
      assert.equal((await facts(storage.db, UNKNOWN, 'agent-new')).provider, null);

      await upsertFromHandshake(
        storage.db,
        { patientAgentId: 'agent-seen', patientPublicKey: KEY, patientEndpoint: 'wss://p.example/a', profile: null },
        AT,
      );
      await storage.transaction(async (trx) => {
        await insertBlock(trx, { patientAgentId: 'agent-seen', reason: null, blockedBy: 'test', createdAt: AT });
        await blockKeysOf(trx, 'agent-seen', [KEY], AT);
      });
      const seen = await storage.transaction((trx) => facts(trx, PUSHING, 'agent-seen'));
      assert.equal(seen.knownPatient, true);
      assert.equal(seen.directoryKey, KEY, 'the entry key, for the directory upsert');
      assert.equal(seen.blocked, true, 'the agent id is blocked');
      assert.equal((await facts(storage.db, PUSHING, 'agent-other', KEY)).blocked, true, 'its key is blocked under any id');
      assert.equal((await facts(storage.db, PUSHING, 'agent-other', OTHER_KEY)).blocked, false);
    });
  });
}
