/**
 * The audit log against someone who can change the database but not the data directory
 * (docs/security.md): each rewrite issue 13 tried is now found by plain verification, which
 * trusts only the key pinned in the data directory and the tree heads kept there; a clean log is
 * never flagged. Real SQLite file and real data directory in a temporary folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStorage, isoNow, type Storage } from '../../foundation/storage/index.ts';
import { ensureOrganizationKey, loadOrganizationKey, rawPublicKey } from '../../foundation/organization/keys.ts';
import { createLogger } from '../../foundation/observability/logger.ts';
import { AuditLog } from './service.ts';
import { entryHash, GENESIS_HASH } from './chain.ts';
import { TREE_HEADS_FILE, appendTreeHeadSync, pinOrganizationKey } from './outside.ts';
import type { TreeHead } from './tree-head.ts';

const logger = createLogger({ level: 'silent', pretty: 'never' });

interface Deployment {
  dataDir: string;
  storage: Storage;
  audit: AuditLog;
  /** A Neuron restarted on the same database and data directory (after a change to either). */
  reopen: () => Promise<AuditLog>;
}

/** A Neuron's audit log as `neuron start` wires it: key pinned, every tree head kept in the file. */
async function deployment(entries: number): Promise<Deployment> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'neuron-tamper-'));
  const storage = await openStorage({
    url: '',
    sqliteFile: path.join(dataDir, 'neuron.sqlite'),
    sqliteSynchronous: 'FULL',
    busyTimeoutMs: 1_000,
    poolMax: 1,
  });
  await storage.migrate();
  const reopen = async (): Promise<AuditLog> => {
    const key = (await loadOrganizationKey(storage.db)) ?? (await ensureOrganizationKey(storage.db)).key;
    pinOrganizationKey(dataDir, key);
    // Grace 0: any database head missing from the file counts (the default minute is for real disks).
    return new AuditLog(storage, key, logger, { dataDir, treeHeadFileGraceMs: 0, onTreeHead: (head) => appendTreeHeadSync(dataDir, head) });
  };
  const audit = await reopen();
  for (let i = 1; i <= entries; i++) await audit.record({ type: 'test.event', actor: 'system', details: { n: i } });
  return { dataDir, storage, audit, reopen };
}

async function rechainFrom(storage: Storage, seq: number): Promise<void> {
  const rows = await storage.db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc').execute();
  let previous = rows.find((r) => r.seq === seq - 1)?.hash ?? GENESIS_HASH;
  for (const row of rows.filter((r) => r.seq >= seq)) {
    const hash = entryHash({ ...row, prev_hash: previous });
    await storage.db.updateTable('audit_log').set({ prev_hash: previous, hash }).where('seq', '=', row.seq).execute();
    previous = hash;
  }
}

function fileHeads(dataDir: string): string[] {
  return readFileSync(path.join(dataDir, TREE_HEADS_FILE), 'utf8')
    .split('\n')
    .filter((line) => line !== '');
}

test("a clean log verifies, with its own heads and a witness's", async () => {
  const { storage, audit, dataDir } = await deployment(8);
  try {
    const witness = JSON.parse(fileHeads(dataDir)[3]!) as TreeHead;
    const result = await audit.verify([{ head: witness, source: 'a witness' }]);
    assert.equal(result.ok, true, result.problem ?? '');
    assert.equal(result.entries, 8);
    assert.ok(result.treeHeads >= 8 + 8 + 1, 'database heads, file heads and the witness head');
  } finally {
    await storage.close();
  }
});

test('a truncated tail is found, with or without its tree heads removed', async () => {
  for (const removeHeads of [false, true]) {
    const { storage, audit } = await deployment(10);
    try {
      await storage.db.deleteFrom('audit_log').where('seq', '>', 7).execute();
      if (removeHeads) {
        await storage.db.deleteFrom('audit_tree_heads').where('tree_size', '>', 7).execute();
        await storage.db.deleteFrom('audit_checkpoints').execute();
      }
      const result = await audit.verify();
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, 8);
      assert.match(result.problem ?? '', /truncated/);
    } finally {
      await storage.close();
    }
  }
});

test('a middle entry rewritten with the chain recomputed is found, even re-sealed with the real key', async () => {
  const { storage, reopen } = await deployment(10);
  try {
    await storage.db.updateTable('audit_log').set({ details: '{"n":40}' }).where('seq', '=', 4).execute();
    await rechainFrom(storage, 4);
    await storage.db.deleteFrom('audit_tree_heads').execute();
    await storage.db.deleteFrom('audit_tree_nodes').execute();
    // Whoever holds the SQLite file holds the key row too: re-seal the rewritten log with it.
    const resealed = await reopen();
    await resealed.tree.sealNow();
    const result = await resealed.verify();
    assert.equal(result.ok, false);
    assert.match(result.problem ?? '', /not consistent with the tree head of size \d+ in the tree-head file/);
    assert.ok(result.badTreeHead !== null && result.badTreeHead >= 4);
  } finally {
    await storage.close();
  }
});

test('a rogue key row and the tree heads signed with it change nothing', async () => {
  const { storage, reopen } = await deployment(5);
  try {
    const { privateKey } = generateKeyPairSync('ed25519');
    await storage.db.updateTable('organization_keys').set({ active: 0 }).execute();
    await storage.db
      .insertInto('organization_keys')
      .values({
        id: randomUUID(),
        public_key: rawPublicKey(privateKey),
        created_at: isoNow(),
        active: 1,
        private_key_pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      })
      .execute();
    const rogue = await reopen();
    await rogue.record({ type: 'test.event', actor: 'system', details: { n: 6 } });
    const result = await rogue.verify();
    assert.equal(result.ok, false);
    assert.equal(result.badTreeHead, 6);
    assert.match(result.problem ?? '', /not signed by a trusted organization key/);
  } finally {
    await storage.close();
  }
});

test('the tree-head file deleted or rolled back is found', async () => {
  const { storage, audit, dataDir } = await deployment(6);
  try {
    const file = path.join(dataDir, TREE_HEADS_FILE);
    const lines = fileHeads(dataDir);
    writeFileSync(file, `${lines.slice(0, 3).join('\n')}\n`);
    const rolledBack = await audit.verify();
    assert.equal(rolledBack.ok, false);
    assert.match(rolledBack.problem ?? '', /rolled back/);
    assert.equal(rolledBack.badTreeHead, 4);

    rmSync(file);
    const deleted = await audit.verify();
    assert.equal(deleted.ok, false);
    assert.match(deleted.problem ?? '', /file is missing/);
  } finally {
    await storage.close();
  }
});

test("database and file truncated together still fail against a witness's tree head", async () => {
  const { storage, audit, dataDir } = await deployment(9);
  try {
    const witness = JSON.parse(fileHeads(dataDir)[8]!) as TreeHead;
    await storage.db.deleteFrom('audit_log').where('seq', '>', 5).execute();
    await storage.db.deleteFrom('audit_tree_heads').where('tree_size', '>', 5).execute();
    writeFileSync(path.join(dataDir, TREE_HEADS_FILE), `${fileHeads(dataDir).slice(0, 5).join('\n')}\n`);
    assert.equal((await audit.verify()).ok, true, 'consistent locally: only outside evidence can tell');
    const result = await audit.verify([{ head: witness, source: 'witness.json' }]);
    assert.equal(result.ok, false);
    assert.equal(result.firstBadSeq, 6);
    assert.match(result.problem ?? '', /witness\.json/);
  } finally {
    await storage.close();
  }
});
