/**
 * The tree-head file's writer (TreeHeadFile in ./outside.ts): a head is in the file as soon as it
 * is offered (before the answers its commit releases, so a killed process loses none), a head no
 * larger than the last one written is skipped, and the rate-limited fdatasync never holds up
 * closing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { rawPublicKey, type OrganizationKey } from '../../foundation/organization/keys.ts';
import { createLogger } from '../../foundation/observability/logger.ts';
import { TREE_HEADS_FILE, TreeHeadFile, readTreeHeadsFile } from './outside.ts';
import { signTreeHead, treeHeadSignedBy } from './tree-head.ts';

const silent = createLogger({ level: 'silent', pretty: 'never' });

function testKey(): OrganizationKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    id: 'test-key',
    publicKey: rawPublicKey(publicKey),
    privateKey,
    publicKeyObject: publicKey,
    sign: (data) => sign(null, data, privateKey).toString('base64url'),
  };
}

function head(key: OrganizationKey, size: number) {
  return signTreeHead(key, { tree_size: size, root_hash: size.toString(16).padStart(64, '0'), timestamp: new Date().toISOString() });
}

describe('TreeHeadFile', () => {
  it('has each head in the file the moment it is offered, skips heads no larger than the last, and closes without waiting out the sync interval', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'neuron-tree-head-file-'));
    const key = testKey();
    // An interval far longer than the test: closing must sync at once instead of waiting for it.
    const file = new TreeHeadFile({ dataDir, logger: silent, syncIntervalMs: 60_000 });

    file.offer(head(key, 3));
    // No await in between: the write is synchronous.
    assert.deepEqual(
      readTreeHeadsFile(dataDir).map((h) => h.tree_size),
      [3],
    );
    file.offer(head(key, 5));
    file.offer(head(key, 4)); // smaller than the last written: a larger head already proves more
    file.offer(head(key, 5));
    file.offer(head(key, 8));
    assert.deepEqual(
      readTreeHeadsFile(dataDir).map((h) => h.tree_size),
      [3, 5, 8],
    );

    const began = performance.now();
    await file.close();
    assert.ok(performance.now() - began < 10_000, 'close waited for the sync interval');
    const heads = readTreeHeadsFile(dataDir);
    assert.ok(
      heads.every((h) => treeHeadSignedBy(h, new Set([key.publicKey]))),
      'every line is a head signed by the key',
    );
    assert.ok(readFileSync(path.join(dataDir, TREE_HEADS_FILE), 'utf8').endsWith('\n'));
  });

  it('reports a file it cannot write without throwing, and writes once it can', async () => {
    // The data directory does not exist: the open fails.
    const parent = mkdtempSync(path.join(tmpdir(), 'neuron-tree-head-file-'));
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'error', pretty: 'never', destination });
    const file = new TreeHeadFile({ dataDir: path.join(parent, 'missing', 'dir'), logger, syncIntervalMs: 0 });
    assert.doesNotThrow(() => file.offer(head(testKey(), 1)));
    await file.close();
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /could not append the audit tree head/);
  });
});
