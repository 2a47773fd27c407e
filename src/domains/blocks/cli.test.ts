/**
 * `neuron block add|remove|list` as an operator runs them: a real process on a temporary config,
 * its exit codes and JSON, and the block holding in the database the Neuron reads.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { openStorage } from '../../foundation/storage/index.ts';
import { isBlocked } from './store.ts';
import { runNeuronCli, temporaryCliConfig, type CliConfig } from '../../../test/helpers/cli.ts';
import type { ProcessResult } from '../../../test/helpers/run-process.ts';

const AGENT = 'patient-agent-blocked-1';

const neuron = (configFile: string, ...args: string[]): Promise<ProcessResult> => runNeuronCli(configFile, args);

describe('neuron block (CLI)', () => {
  let cli: CliConfig;
  let dir: string;
  let config: string;

  before(() => {
    cli = temporaryCliConfig('neuron-block-cli-');
    dir = cli.dir;
    config = cli.configFile;
  });
  after(() => cli.remove());

  test('bad input exits 2 and writes nothing', async () => {
    const bad = await neuron(config, 'block', 'add', 'has space', '--reason', 'line\u0007bell');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /<patient_agent_id> must be/);
    assert.match(bad.stderr, /--reason must be/);
    assert.equal((await neuron(config, 'block', 'add', AGENT)).code, 2, '--reason is required');
    assert.equal(existsSync(path.join(dir, 'data')), false, 'no database created');
  });

  test('add, list and remove, with exit codes, audited as cli', async () => {
    const added = await neuron(config, 'block', 'add', AGENT, '--reason', 'synthetic abuse report', '--json');
    assert.equal(added.code, 0, added.stderr);
    const block = JSON.parse(added.stdout) as { patient_agent_id: string; blocked_by: string; suspended_relationship_ids: string[] };
    assert.equal(block.patient_agent_id, AGENT);
    assert.equal(block.blocked_by, 'cli');
    assert.deepEqual(block.suspended_relationship_ids, []);
    assert.equal((await neuron(config, 'block', 'add', AGENT, '--reason', 'again')).code, 1, 'already blocked');

    const storage = await openStorage({
      url: '',
      sqliteFile: path.join(dir, 'data', 'neuron.sqlite'),
      sqliteSynchronous: 'FULL',
      busyTimeoutMs: 5_000,
      poolMax: 1,
    });
    try {
      assert.equal(await isBlocked(storage.db, AGENT), true, 'the block is where the Neuron reads it');
    } finally {
      await storage.close();
    }

    const listed = await neuron(config, 'block', 'list', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ patient_agent_id: string }>).map((b) => b.patient_agent_id),
      [AGENT],
    );
    assert.match((await neuron(config, 'block', 'list')).stdout, new RegExp(`${AGENT}\\s+\\S+\\s+cli\\s+synthetic abuse report`));

    const removed = await neuron(config, 'block', 'remove', AGENT);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /unblocked/);
    assert.equal((await neuron(config, 'block', 'remove', AGENT)).code, 1, 'not blocked any more');
    assert.match((await neuron(config, 'block', 'list')).stdout, /no blocked patient agents/);

    const verify = await neuron(config, 'audit', 'verify', '--json');
    assert.equal(verify.code, 0, verify.stderr);
  });
});
