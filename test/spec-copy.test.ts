/**
 * The repository's spec/ is a copy of the network's shared/spec/ (the contract and its test
 * vectors), so that a bare clone runs its tests with nothing beside it. spec/SHA256SUMS records
 * the digests of the files as copied; this test fails when a copy is edited here instead of being
 * copied again from the network. Whether the copy still matches the network's current files is
 * checked outside the suite, where that folder exists: scripts/check-spec-copy.sh (run by .ci/run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const specDir = path.resolve(import.meta.dirname, '..', 'spec');

test('spec/ holds exactly the files recorded in spec/SHA256SUMS, byte for byte', () => {
  const lines = readFileSync(path.join(specDir, 'SHA256SUMS'), 'utf8').trim().split('\n');
  const recorded = lines.map((line) => {
    const [digest, name] = line.split(/\s+/);
    return { digest, name: name! };
  });
  assert.deepEqual(
    recorded.map((r) => r.name).sort(),
    ['handshake.md', 'registry.md', 'vectors.json'],
    'SHA256SUMS names the three copied files',
  );
  for (const { digest, name } of recorded) {
    const actual = createHash('sha256')
      .update(readFileSync(path.join(specDir, name)))
      .digest('hex');
    assert.equal(actual, digest, `spec/${name} was edited here: copy the network's file again and update spec/SHA256SUMS`);
  }
});
