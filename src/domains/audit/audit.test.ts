import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openStorage, type Storage } from '../../foundation/storage/index.ts';
import { ensureOrganizationKey, loadOrganizationKey } from '../../foundation/organization/keys.ts';
import { createLogger } from '../../foundation/observability/logger.ts';
import { AuditLog, verifyAuditChain, type VerifyResult } from './service.ts';
import { GENESIS_HASH, canonicalJson, entryCanonical, entryCanonicalWithCanonicalDetails, entryHash } from './chain.ts';

/** Verifies as `neuron audit verify` does, trusting the key the test created (pinned in a real data directory). */
async function verifyWithPinnedKey(storage: Storage): Promise<VerifyResult> {
  const key = await loadOrganizationKey(storage.db);
  return verifyAuditChain(storage.db, { trustedKeys: new Set([key!.publicKey]), heads: [] });
}

async function auditWithEntries(count: number): Promise<{ storage: Storage; audit: AuditLog }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'neuron-audit-'));
  const storage = await openStorage({
    url: '',
    sqliteFile: path.join(dir, 'neuron.sqlite'),
    sqliteSynchronous: 'FULL',
    busyTimeoutMs: 1_000,
    poolMax: 1,
  });
  await storage.migrate();
  const { key } = await ensureOrganizationKey(storage.db);
  const audit = new AuditLog({ storage, key, logger: createLogger({ level: 'silent', pretty: 'never' }) });
  for (let i = 1; i <= count; i++) await audit.record({ type: 'test.event', actor: 'system', details: { n: i } });
  return { storage, audit };
}

test('canonical JSON follows RFC 8785: sorted keys, no whitespace, shortest numbers', () => {
  assert.equal(canonicalJson({ b: 1, a: [1.0, 'x', { d: null, c: true }] }), '{"a":[1,"x",{"c":true,"d":null}],"b":1}');
  assert.equal(canonicalJson({ n: 1e21, s: 'é\u2028' }), '{"n":1e+21,"s":"é\u2028"}');
});

test('an entry put together from canonical details is byte for byte its RFC 8785 form', () => {
  // Quotes, escapes, control characters, non-ASCII, an astral character and a lone surrogate: what JSON.stringify and RFC 8785 both write.
  const awkward = ['plain', 'quote " and \\ backslash', 'tab\t newline\n \u0001', 'Zoë 医院', 'emoji \u{1F600}', 'lone \ud800'];
  for (const text of awkward) {
    const fields = {
      seq: 123_456_789,
      occurred_at: '2026-12-03T13:00:00.000Z',
      event_type: `handshake.${text}`,
      actor: `patient:${text}`,
      details: canonicalJson({ z: text, a: [1, 2.5, null, true], nested: { b: text } }),
      prev_hash: GENESIS_HASH,
    };
    assert.equal(entryCanonicalWithCanonicalDetails(fields), entryCanonical(fields));
  }
});

test('entries chain from the genesis hash and verify', async () => {
  const { storage, audit } = await auditWithEntries(5);
  try {
    const entries = await audit.list({ limit: 10 });
    assert.equal(entries.length, 5);
    assert.equal(entries[0]!.prev_hash, GENESIS_HASH);
    for (let i = 1; i < entries.length; i++) assert.equal(entries[i]!.prev_hash, entries[i - 1]!.hash);
    assert.equal(entryHash(entries[2]!), entries[2]!.hash);
    assert.deepEqual(await verifyWithPinnedKey(storage), {
      ok: true,
      entries: 5,
      checkpoints: 0,
      treeHeads: 5,
      firstBadSeq: null,
      badTreeHead: null,
      problem: null,
    });
  } finally {
    await storage.close();
  }
});

test('secrets and demographics never reach audit details', async () => {
  const { storage, audit } = await auditWithEntries(0);
  try {
    const entry = await audit.record({
      type: 'test.event',
      actor: 'system',
      details: {
        relationship_id: 'r-1',
        token: 'secret-token',
        profile: { display_name: 'Test Patient' },
        nested: { date_of_birth: '2000-01-01', ok: 1 },
      },
    });
    assert.equal(entry.details, '{"nested":{"ok":1},"relationship_id":"r-1"}');
  } finally {
    await storage.close();
  }
});

test('a changed entry is detected at its sequence number', async () => {
  const { storage } = await auditWithEntries(6);
  try {
    await storage.db.updateTable('audit_log').set({ details: '{"n":99}' }).where('seq', '=', 4).execute();
    const result = await verifyWithPinnedKey(storage);
    assert.equal(result.ok, false);
    assert.equal(result.firstBadSeq, 4);
  } finally {
    await storage.close();
  }
});

test('a changed entry whose hash was recomputed is detected at itself (its tree head) or by the next link', async () => {
  const { storage } = await auditWithEntries(6);
  try {
    const row = await storage.db.selectFrom('audit_log').selectAll().where('seq', '=', 3).executeTakeFirstOrThrow();
    const forged = { ...row, details: '{"n":42}' };
    await storage.db
      .updateTable('audit_log')
      .set({ details: forged.details, hash: entryHash(forged) })
      .where('seq', '=', 3)
      .execute();
    const result = await verifyWithPinnedKey(storage);
    assert.equal(result.ok, false);
    // Each record() sealed its own tree head, so the head of size 3 no longer matches.
    assert.equal(result.firstBadSeq, 3);
    assert.equal(result.badTreeHead, 3);

    // Without the tree heads, the chain link of entry 4 still gives it away.
    await storage.db.deleteFrom('audit_tree_heads').execute();
    assert.equal((await verifyWithPinnedKey(storage)).firstBadSeq, 4);
  } finally {
    await storage.close();
  }
});

test('a deleted entry is detected as the first missing sequence number', async () => {
  const { storage } = await auditWithEntries(6);
  try {
    await storage.db.deleteFrom('audit_log').where('seq', '=', 3).execute();
    const result = await verifyWithPinnedKey(storage);
    assert.equal(result.ok, false);
    assert.equal(result.firstBadSeq, 3);
  } finally {
    await storage.close();
  }
});

test('reordered entries are detected', async () => {
  const { storage } = await auditWithEntries(6);
  try {
    // Swap the contents of entries 2 and 5, keeping the sequence numbers in place.
    const [two, five] = await Promise.all(
      [2, 5].map((seq) => storage.db.selectFrom('audit_log').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow()),
    );
    await storage.transaction(async (trx) => {
      await trx
        .updateTable('audit_log')
        .set({ occurred_at: five!.occurred_at, details: five!.details, prev_hash: five!.prev_hash, hash: five!.hash })
        .where('seq', '=', 2)
        .execute();
      await trx
        .updateTable('audit_log')
        .set({ occurred_at: two!.occurred_at, details: two!.details, prev_hash: two!.prev_hash, hash: two!.hash })
        .where('seq', '=', 5)
        .execute();
    });
    const result = await verifyWithPinnedKey(storage);
    assert.equal(result.ok, false);
    assert.equal(result.firstBadSeq, 2);
  } finally {
    await storage.close();
  }
});

test('checkpoints are signed, and catch a truncated tail and a forged signature', async () => {
  const { storage, audit } = await auditWithEntries(5);
  try {
    assert.deepEqual(await audit.checkpoint(), { seq: 5 });
    assert.equal(await audit.checkpoint(), null, 'no new checkpoint while the head has not moved');
    assert.equal((await verifyWithPinnedKey(storage)).ok, true);

    // Removing the newest entries leaves a consistent-looking chain; only the checkpoint shows it.
    await storage.db.deleteFrom('audit_log').where('seq', '>=', 4).execute();
    const truncated = await verifyWithPinnedKey(storage);
    assert.equal(truncated.ok, false);
    assert.equal(truncated.firstBadSeq, 4);
  } finally {
    await storage.close();
  }

  const second = await auditWithEntries(3);
  try {
    await second.audit.checkpoint();
    await sql`UPDATE audit_checkpoints SET signed_at = '2000-01-01T00:00:00.000Z'`.execute(second.storage.db);
    const forged = await verifyWithPinnedKey(second.storage);
    assert.equal(forged.ok, false);
    assert.match(forged.problem ?? '', /invalid signature/);
  } finally {
    await second.storage.close();
  }
});

test('appends that race stay one unbroken chain', async () => {
  const { storage, audit } = await auditWithEntries(0);
  try {
    await Promise.all(Array.from({ length: 40 }, (_, i) => audit.record({ type: 'race', actor: 'system', details: { i } })));
    const result = await verifyWithPinnedKey(storage);
    assert.equal(result.ok, true);
    assert.equal(result.entries, 40);
  } finally {
    await storage.close();
  }
});
