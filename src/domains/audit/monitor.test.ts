/**
 * `neuron audit monitor`'s check against a real running Neuron: runs that see the log grow pass,
 * a truncation between two runs and a forged signature are reported, and the kept head stays.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';
import { monitorOnce } from './monitor.ts';

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
});
