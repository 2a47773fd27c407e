/**
 * The repository's spec/ is a copy of the network's shared/spec/ (the contract and its test
 * vectors), so that a bare clone can run its tests. Where the network's folder is at hand, the
 * copies must be byte for byte the same: otherwise the tests would prove conformance to an old
 * contract. Where it is not (a bare clone), the comparison is reported as skipped, with the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
/** The network's spec: CAREAGENT_SHARED_SPEC when set, else ../shared/spec beside the repository (CI's layout). */
const sharedSpec = process.env['CAREAGENT_SHARED_SPEC'] || path.resolve(root, '..', 'shared', 'spec');
const COPIED = ['vectors.json', 'handshake.md', 'registry.md'];

test("spec/ is byte for byte the network's shared/spec/ (vectors.json, handshake.md, registry.md)", (t) => {
  if (!existsSync(path.join(sharedSpec, 'vectors.json'))) {
    t.skip(
      `${sharedSpec}/vectors.json does not exist (no shared/spec beside the repository; set CAREAGENT_SHARED_SPEC to compare with another copy)`,
    );
    return;
  }
  for (const name of COPIED) {
    const ours = readFileSync(path.join(root, 'spec', name));
    assert.ok(
      ours.equals(readFileSync(path.join(sharedSpec, name))),
      `spec/${name} differs from ${sharedSpec}/${name}: copy the network's file into spec/`,
    );
  }
});
