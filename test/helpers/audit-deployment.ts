/**
 * A Neuron's audit log wired as `neuron start` wires it (src/composition/steps.ts auditStep): the
 * organization key loaded from the database, the genesis key pinned in a data directory of its
 * own, every tree head kept in that directory's file, and a `neuron.started` entry naming it. On
 * SQLite or PostgreSQL (test/helpers/databases.ts); `instance` adds another Neuron with its own
 * data directory over the same database, as a second instance on PostgreSQL is.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Storage } from '../../src/foundation/storage/index.ts';
import { ensureOrganizationKey, type CurrentOrganizationKey } from '../../src/foundation/organization/keys.ts';
import { createLogger } from '../../src/foundation/observability/logger.ts';
import { AuditLog, TREE_HEADS_FILE, appendTreeHeadSync, pinGenesisKey } from '../../src/domains/audit/index.ts';
import type { TestBackend, TestDatabase } from './databases.ts';

const logger = createLogger({ level: 'silent', pretty: 'never' });

export interface AuditInstance {
  dataDir: string;
  storage: Storage;
  key: CurrentOrganizationKey;
  audit: AuditLog;
  /** The same Neuron restarted on its database and data directory (after a change to either). */
  reopen(): Promise<AuditInstance>;
}

export interface AuditDeployment extends AuditInstance {
  database: TestDatabase;
  /**
   * Another Neuron over the same database (started: its start entry written), with a data
   * directory of its own (PostgreSQL), or this one's (as a command beside a running Neuron on SQLite).
   */
  instance(options?: { sameDataDir?: boolean }): Promise<AuditInstance>;
}

async function openInstance(storage: Storage, dataDir: string): Promise<AuditInstance> {
  const { key } = await ensureOrganizationKey(storage.db);
  await pinGenesisKey(storage.db, dataDir, key);
  // Grace 0: any head missing from the file counts (the default minute is for real disks).
  const audit = new AuditLog({
    storage,
    key,
    logger,
    dataDir,
    treeHeadFileGraceMs: 0,
    onTreeHead: (head) => appendTreeHeadSync(dataDir, head),
  });
  return { dataDir, storage, key, audit, reopen: () => openInstance(storage, dataDir) };
}

function tempDataDir(t: { after(fn: () => void | Promise<void>): void }): string {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'neuron-audit-data-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  return dataDir;
}

/** A started Neuron whose log holds `entries` entries: its start entry, then `test.event`s. */
export async function auditDeployment(
  backend: TestBackend,
  t: { after(fn: () => Promise<void>): void },
  entries: number,
): Promise<AuditDeployment> {
  const database = await backend.open(t);
  const first = await openInstance(database.storage, tempDataDir(t));
  await first.audit.recordOwn('neuron.started', { instance_id: 'test-instance-1' });
  for (let i = 2; i <= entries; i++) await first.audit.record({ type: 'test.event', actor: 'system', details: { n: i } });
  let instances = 1;
  const instance = async (options: { sameDataDir?: boolean } = {}): Promise<AuditInstance> => {
    const other = await openInstance(await database.openPeer(), options.sameDataDir ? first.dataDir : tempDataDir(t));
    await other.audit.recordOwn('neuron.started', { instance_id: `test-instance-${++instances}` });
    return other;
  };
  return { ...first, database, instance };
}

/** The lines of a data directory's tree-head file. */
export function fileHeadLines(dataDir: string): string[] {
  return readFileSync(path.join(dataDir, TREE_HEADS_FILE), 'utf8')
    .split('\n')
    .filter((line) => line !== '');
}
