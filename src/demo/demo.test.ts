import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runDemo } from './run.ts';

test('the demo establishes a relationship, then gets `existing`, and leaves nothing behind', async () => {
  const lines: string[] = [];
  const { first, second } = await runDemo({ print: (line = '') => lines.push(line) });
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
