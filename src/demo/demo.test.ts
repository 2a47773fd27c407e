import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runDemo } from './run.ts';
import { createNeuron } from '../main.ts';
import { runNeuronCli } from '../../test/helpers/cli.ts';

test('the demo establishes a relationship, then gets `existing`, and leaves nothing behind', async () => {
  const lines: string[] = [];
  const { first, second } = await runDemo({ print: (line = '') => lines.push(line), createNeuron });
  assert.equal(first.status, 'new');
  assert.equal(second.status, 'existing');
  assert.equal(second.relationshipId, first.relationshipId);
  const text = lines.join('\n');
  assert.match(text, /handshake\.complete\s+status new/);
  assert.match(text, /status existing, same relationship id/);
  const dataLine = lines.find((l) => l.includes('(removed at the end)'))!;
  const dir = dataLine.trim().split(/\s+/)[1]!;
  assert.equal(existsSync(dir), false);
});

test('`neuron demo` as a command: the same steps and exit 0, through whichever build bin/neuron.js runs', async () => {
  // In CI that is the bundle (dist/server/), where the demo is a chunk loaded on first use; the
  // demo needs no configuration, so the file named here need not exist.
  const { code, stdout, stderr } = await runNeuronCli('/nonexistent/neuron.config.json', ['demo']);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /handshake\.complete\s+status new, then close 1000/);
  assert.match(stdout, /status existing, same relationship id/);
  assert.match(stdout, /Stopped the Neuron; removing its temporary directory/);
});
