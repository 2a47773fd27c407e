/**
 * What the audit verifier keeps outside the database, in the data directory (docs/security.md):
 *
 * - `organization-key.json`: the organization's first (genesis) public key, pinned at the first
 *   start and never rewritten. The verifier trusts this key, and after it only the keys it
 *   reached through rotation entries in the log (./rotation.ts); a key row added to the database
 *   changes nothing.
 * - `audit-tree-heads.log`: the signed tree heads this instance produced, one JSON line each,
 *   written right after their commit and fdatasync'd off the handshake's path (TreeHeadFile). A database rewritten or
 *   truncated behind the Neuron's back is no longer consistent with them.
 *
 * A copy of the data directory (with the config file) verifies the same as the original.
 */
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  mkdirSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { OrganizationKey } from '../../foundation/organization/keys.ts';
import { parseTreeHead, type TreeHead } from './tree-head.ts';

export const ORGANIZATION_KEY_FILE = 'organization-key.json';
export const TREE_HEADS_FILE = 'audit-tree-heads.log';

export interface PinnedKey {
  key_id: string;
  public_key: string;
  /**
   * This data directory's name in the log: the Neuron started on it writes it into its
   * `neuron.started` entries, whose tree heads it keeps in its file (the PostgreSQL file check,
   * ./verify.ts). Absent in files pinned before it existed, until the next start adds it.
   */
  data_dir_id?: string;
}

/**
 * Pins the key's public half in the data directory unless a key is pinned already; returns the
 * pinned one. Give it the genesis key (./rotation.ts genesisKey) once the key was ever rotated.
 */
export function pinOrganizationKey(dataDir: string, key: Pick<OrganizationKey, 'id' | 'publicKey'>): PinnedKey {
  const file = path.join(dataDir, ORGANIZATION_KEY_FILE);
  if (existsSync(file)) return withDataDirId(dataDir, readPinnedKey(dataDir)!);
  // With PostgreSQL nothing else may have created the data directory yet.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pinned: PinnedKey = { key_id: key.id, public_key: key.publicKey, data_dir_id: randomUUID() };
  // 'wx': two instances starting on one data directory cannot both write it.
  let fd: number | undefined;
  try {
    fd = openSync(file, 'wx', 0o644);
    writeSync(fd, `${JSON.stringify({ type: 'neuron.organization_key', ...pinned })}\n`);
    fsyncSync(fd);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return readPinnedKey(dataDir)!;
}

export function readPinnedKey(dataDir: string): PinnedKey | null {
  const file = path.join(dataDir, ORGANIZATION_KEY_FILE);
  if (!existsSync(file)) return null;
  const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<PinnedKey>;
  if (typeof value.public_key !== 'string' || typeof value.key_id !== 'string')
    throw new TypeError(`${file} does not hold key_id and public_key`);
  return {
    key_id: value.key_id,
    public_key: value.public_key,
    ...(typeof value.data_dir_id === 'string' ? { data_dir_id: value.data_dir_id } : {}),
  };
}

/** Adds a data directory id to a pin written before it existed; the key in it never changes. */
function withDataDirId(dataDir: string, pinned: PinnedKey): PinnedKey {
  if (pinned.data_dir_id !== undefined) return pinned;
  const file = path.join(dataDir, ORGANIZATION_KEY_FILE);
  const updated: PinnedKey = { ...pinned, data_dir_id: randomUUID() };
  // Written aside, fsynced and renamed: a crash leaves the old pin or the new one, never half.
  const fd = openSync(`${file}.tmp`, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify({ type: 'neuron.organization_key', ...updated })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(`${file}.tmp`, file);
  return updated;
}

/** The public keys the verifier starts from: the pinned genesis key (rotation entries add more as the log is read, ./verify.ts). */
export function trustedKeys(dataDir: string): Set<string> {
  const pinned = readPinnedKey(dataDir);
  return new Set(pinned ? [pinned.public_key] : []);
}

/**
 * The tree heads kept in the file. A last line without its newline is a write cut short by a
 * crash and is skipped; any other unreadable line is an error naming it.
 */
export function readTreeHeadsFile(dataDir: string): TreeHead[] {
  const file = path.join(dataDir, TREE_HEADS_FILE);
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  // The piece after the last newline is empty, or a line cut short.
  const complete = text.split('\n').slice(0, -1);
  return complete.map((line, i) => {
    try {
      return parseTreeHead(JSON.parse(line));
    } catch (error) {
      throw new TypeError(`${file} line ${i + 1}: ${(error as Error).message}`);
    }
  });
}

/** Appends one head and fdatasyncs it before returning (commands that exit right after their commit). */
export function appendTreeHeadSync(dataDir: string, head: TreeHead): void {
  const fd = openSync(path.join(dataDir, TREE_HEADS_FILE), 'a', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(head)}\n`);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends tree heads to the file after their commit. Each head is written at once, with a plain
 * write() before the answers that its commit releases go out: the line is in the kernel's page
 * cache, so a killed process (SIGKILL, a crash) leaves every head it acknowledged in the file.
 * Only a power loss or an operating-system crash can take back what was not yet fdatasync'd; the
 * fdatasync runs off the event loop and at most once per `syncIntervalMs`, so the file lags the
 * database by at most that much after one, which verification accepts (the database must be at
 * least as large as every head in the file, ./verify.ts). An fdatasync per commit group was the
 * largest part of what tree heads cost a handshake (docs/benchmarks.md, "Tree heads' cost").
 */
export class TreeHeadFile {
  readonly #file: string;
  readonly #logger: Logger;
  readonly #syncIntervalMs: number;
  #fd: number | null = null;
  #writtenSize = 0;
  /** Written and not yet fdatasync'd. */
  #dirty = false;
  /** The fdatasync running, or the timer that will start the next one. */
  #syncing: Promise<void> | null = null;
  #syncTimer: NodeJS.Timeout | null = null;
  #lastSyncAt = -Infinity;

  constructor(options: { dataDir: string; logger: Logger; syncIntervalMs: number }) {
    this.#file = path.join(options.dataDir, TREE_HEADS_FILE);
    this.#logger = options.logger;
    this.#syncIntervalMs = options.syncIntervalMs;
  }

  /** Writes the head unless a larger one is in the file already (a larger head proves more); never throws. */
  offer(head: TreeHead): void {
    if (head.tree_size <= this.#writtenSize) return;
    try {
      this.#fd ??= openSync(this.#file, 'a', 0o644);
      const line = Buffer.from(`${JSON.stringify(head)}\n`);
      // A regular file takes the whole line in one write() but when the disk fills up; finish a
      // short write rather than leave half a line for the next head to follow.
      for (let written = 0; written < line.length; ) written += writeSync(this.#fd, line, written);
      this.#writtenSize = head.tree_size;
      this.#dirty = true;
    } catch (error) {
      this.#logger.error({ err: error, file: this.#file }, 'could not append the audit tree head to its file');
      return;
    }
    this.#scheduleSync();
  }

  /** Resolves once every head offered so far is fdatasync'd. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#syncTimer !== null) {
        clearTimeout(this.#syncTimer);
        this.#syncTimer = null;
      }
      if (this.#syncing !== null) await this.#syncing;
      else if (this.#dirty && this.#fd !== null) await this.#sync();
      else return;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #scheduleSync(): void {
    if (this.#syncing !== null || this.#syncTimer !== null) return; // the running sync or timer reschedules
    const wait = this.#lastSyncAt + this.#syncIntervalMs - performance.now();
    if (wait <= 0) {
      void this.#sync();
      return;
    }
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = null;
      void this.#sync();
    }, wait);
  }

  #sync(): Promise<void> {
    const fd = this.#fd;
    if (fd === null || !this.#dirty) return Promise.resolve();
    this.#dirty = false;
    this.#lastSyncAt = performance.now();
    this.#syncing = new Promise<void>((resolve) =>
      fdatasync(fd, (error) => {
        if (error) this.#logger.error({ err: error, file: this.#file }, 'could not fdatasync the audit tree-head file');
        this.#syncing = null;
        resolve();
        if (this.#dirty) this.#scheduleSync();
      }),
    );
    return this.#syncing;
  }
}
