/**
 * `neuron audit monitor`'s check against a real running Neuron: runs that see the log grow pass,
 * a truncation between two runs and a forged signature are reported, and the kept head stays; a
 * key rotation is followed, a forged one is reported.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { monitorOnce } from './monitor.ts';
import { CurrentOrganizationKey, ensureOrganizationKey, rawPublicKey } from '../../foundation/organization/keys.ts';
import { createLogger } from '../../foundation/observability/logger.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import { AuditLog } from './service.ts';
import { appendTreeHeadSync } from './outside.ts';
import { KEY_ROTATION_EVENT, keyRotationMessage, rotateOrganizationKey } from './rotation.ts';

const silent = createLogger({ level: 'silent', pretty: 'never' });

describe('audit monitor', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.stop();
  });

  it('passes while the log grows, and catches a truncation between two runs', async () => {
    const stateFile = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-monitor-')), 'state.json');
    const first = await monitorOnce({ baseUrl: t.url, stateFile });
    assert.equal(first.ok, true, first.message);
    for (let i = 0; i < 3; i++) await t.neuron.audit.record({ type: 'test.event', actor: 'system', details: { i } });
    const second = await monitorOnce({ baseUrl: t.url, stateFile });
    assert.equal(second.ok, true, second.message);
    const kept = second.ok ? second.head.tree_size : 0;

    await t.neuron.storage.db
      .deleteFrom('audit_log')
      .where('seq', '>', kept - 2)
      .execute();
    await t.neuron.storage.db
      .deleteFrom('audit_tree_heads')
      .where('tree_size', '>', kept - 2)
      .execute();
    const third = await monitorOnce({ baseUrl: t.url, stateFile });
    assert.equal(third.ok, false);
    assert.equal(!third.ok && third.kind, 'truncation');
    assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).tree_head.tree_size, kept, 'the kept head is not replaced');
  });

  it('refuses a tree head not signed by the pinned key', async () => {
    const stateFile = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-monitor-')), 'state.json');
    assert.equal((await monitorOnce({ baseUrl: t.url, stateFile })).ok, true);
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    writeFileSync(stateFile, JSON.stringify({ ...state, public_key: 'A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg' }));
    const outcome = await monitorOnce({ baseUrl: t.url, stateFile });
    assert.equal(!outcome.ok && outcome.kind, 'signature');
  });
  it('follows a key rotation between two runs and pins the new key', async () => {
    const stateFile = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-monitor-')), 'state.json');
    assert.equal((await monitorOnce({ baseUrl: t.url, stateFile })).ok, true);
    // As `neuron key rotate` does beside the running Neuron.
    const { key } = await ensureOrganizationKey(t.neuron.storage.db);
    const audit = new AuditLog({
      storage: t.neuron.storage,
      key,
      logger: silent,
      dataDir: t.dataDir,
      onTreeHead: (head) => appendTreeHeadSync(t.dataDir, head),
    });
    const rotated = await rotateOrganizationKey({ storage: t.neuron.storage, audit, key, actor: 'cli' });
    await t.neuron.audit.record({ type: 'test.event', actor: 'system', details: { after: 'rotation' } });
    const outcome = await monitorOnce({ baseUrl: t.url, stateFile });
    assert.equal(outcome.ok, true, outcome.message);
    assert.match(outcome.message, /followed the key rotation/);
    assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).public_key, rotated.next.publicKey);
  });

  // Last: it leaves a rogue key active in this Neuron's database.
  it('reports a rotation not signed by the key it pinned', async () => {
    const stateFile = path.join(mkdtempSync(path.join(tmpdir(), 'neuron-monitor-')), 'state.json');
    assert.equal((await monitorOnce({ baseUrl: t.url, stateFile })).ok, true);
    const real = await ensureOrganizationKey(t.neuron.storage.db);
    const { privateKey } = generateKeyPairSync('ed25519');
    const rogueId = randomUUID();
    await t.neuron.storage.db.updateTable('organization_keys').set({ active: 0 }).execute();
    await t.neuron.storage.db
      .insertInto('organization_keys')
      .values({
        id: rogueId,
        public_key: rawPublicKey(privateKey),
        created_at: isoNow(),
        active: 1,
        private_key_pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      })
      .execute();
    const statement = {
      old_key_id: real.key.id,
      old_public_key: real.key.publicKey,
      new_key_id: rogueId,
      new_public_key: rawPublicKey(privateKey),
      rotated_at: isoNow(),
    };
    const signature = sign(null, keyRotationMessage(statement), privateKey).toString('base64url');
    const rogue = (await ensureOrganizationKey(t.neuron.storage.db)).key;
    assert.ok(rogue instanceof CurrentOrganizationKey);
    const audit = new AuditLog({ storage: t.neuron.storage, key: rogue, logger: silent });
    await audit.record({
      type: KEY_ROTATION_EVENT,
      actor: 'cli',
      details: { ...statement, old_key_signature: signature, new_key_signature: signature },
    });
    const outcome = await monitorOnce({ baseUrl: t.url, stateFile });
    assert.equal(!outcome.ok && outcome.kind, 'signature');
    assert.match(outcome.message, /key rotation at entry \d+ does not verify: the old key did not sign it/);
  });
});
