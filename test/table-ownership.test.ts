/**
 * Every table has one owner (docs/architecture.md, "Every domain's public face"; docs/storage.md
 * lists the tables): only the owner's files name it in SQL or in a kysely query
 * (`selectFrom('t')`, `insertInto`, `updateTable`, `deleteFrom`, joins). Anyone else asks the
 * owner (its service, or a function its index.ts exports). A file under src/ that names another
 * owner's table fails here, with the file and the table. The schema itself (src/foundation/storage/,
 * migrations included) and tests are exempt; so are the few edge exceptions listed below, each with
 * its reason, and each checked to still be true so the list cannot rot.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Table → the folder (or file) that owns it. */
const OWNERS: Record<string, string> = {
  api_keys: 'src/domains/api-keys/',
  audit_log: 'src/domains/audit/',
  audit_checkpoints: 'src/domains/audit/',
  audit_tree_nodes: 'src/domains/audit/',
  audit_tree_heads: 'src/domains/audit/',
  blocks: 'src/domains/blocks/',
  blocked_keys: 'src/domains/blocks/',
  leases: 'src/network/cluster/',
  operators: 'src/domains/operators/',
  operator_sessions: 'src/domains/operators/',
  organization_keys: 'src/foundation/organization/',
  outbox: 'src/domains/outbox/',
  patients: 'src/domains/directory/',
  providers: 'src/domains/providers/',
  relationships: 'src/domains/relationships/',
  // Small named values of parts with no table of their own; no domain owns it (docs/storage.md).
  settings: 'src/foundation/storage/settings.ts',
  webhook_subscriptions: 'src/domains/webhooks/',
};

/** Files allowed to read another owner's table, and why. Each must still do so. */
const EXCEPTIONS: Record<string, { tables: string[]; why: string }> = {
  'src/demo/run.ts': {
    tables: ['relationships', 'patients', 'outbox', 'audit_log'],
    why: 'the demo (an edge) reads back and prints what its one handshake recorded, in a throwaway database',
  },
};

/** The schema's own code: it creates and migrates every table. */
const EXEMPT = /^src\/foundation\/storage\/(?!settings\.ts$)/;

const BUILDER =
  /\b(?:selectFrom|insertInto|updateTable|deleteFrom|mergeInto|replaceInto|innerJoin|leftJoin|rightJoin|fullJoin)\(\s*['"`]([a-z_]+)/g;
const SQL = /\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+([a-z_]+)\b/g;

/** The table names a source text uses in queries, without its comments. */
function tablesNamedIn(source: string): Set<string> {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const named = new Set<string>();
  for (const pattern of [BUILDER, SQL]) for (const match of code.matchAll(pattern)) named.add(match[1]!);
  return new Set([...named].filter((name) => name in OWNERS));
}

function sourceFiles(relative: string): string[] {
  return readdirSync(path.join(ROOT, relative), { withFileTypes: true }).flatMap((entry) => {
    const child = `${relative}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(child);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [child] : [];
  });
}

function ownedBy(file: string, table: string): boolean {
  const owner = OWNERS[table]!;
  return owner.endsWith('/') ? file.startsWith(owner) : file === owner;
}

describe('table ownership', () => {
  it('finds table names in kysely queries and plain SQL, not in comments', () => {
    const sample = `
      // SELECT * FROM providers (a comment)
      /** INSERT INTO blocks */
      db.selectFrom('relationships').innerJoin("patients", 'x');
      new Statement('SELECT 1 FROM audit_log a JOIN outbox o ON 1 = 1');
      await sql\`UPDATE webhook_subscriptions SET active = 0\`;
      db.updateTable('not_a_table');`;
    assert.deepEqual([...tablesNamedIn(sample)].sort(), ['audit_log', 'outbox', 'patients', 'relationships', 'webhook_subscriptions']);
  });

  it('every table the migrations create has an owner', () => {
    const migrations = sourceFiles('src/foundation/storage/migrations/sqlite').map((file) => readFileSync(path.join(ROOT, file), 'utf8'));
    const created = new Set(
      migrations.flatMap((text) => [...text.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)/g)].map((m) => m[1]!)),
    );
    assert.ok(created.size > 0, 'the migrations create tables');
    assert.deepEqual([...created].filter((table) => !(table in OWNERS)).sort(), [], 'tables without an owner in OWNERS');
    assert.deepEqual(
      Object.keys(OWNERS)
        .filter((table) => !created.has(table))
        .sort(),
      [],
      'owners of tables no migration creates',
    );
  });

  it('no file under src/ names a table another folder owns', () => {
    const crossings: string[] = [];
    for (const file of sourceFiles('src')) {
      if (EXEMPT.test(file)) continue;
      const allowed = EXCEPTIONS[file]?.tables ?? [];
      for (const table of tablesNamedIn(readFileSync(path.join(ROOT, file), 'utf8'))) {
        if (!ownedBy(file, table) && !allowed.includes(table)) crossings.push(`${file} uses ${table} (owned by ${OWNERS[table]})`);
      }
    }
    assert.deepEqual(crossings, [], 'ask the owner (its service, or a function its index.ts exports) instead');
  });

  it('each listed exception still reads what it is excused for', () => {
    for (const [file, { tables }] of Object.entries(EXCEPTIONS)) {
      const named = tablesNamedIn(readFileSync(path.join(ROOT, file), 'utf8'));
      assert.deepEqual(
        tables.filter((table) => !named.has(table)),
        [],
        `${file} no longer uses these tables: remove them from EXCEPTIONS`,
      );
    }
  });
});
