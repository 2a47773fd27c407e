/** How storage is opened (src/foundation/storage/from-config.ts builds these from the config). */
import type { StorageError } from './failures.ts';

export interface StorageOptions {
  /** Empty for SQLite; a postgres:// URL for PostgreSQL. */
  url: string;
  sqliteFile: string;
  sqliteSynchronous: 'FULL' | 'NORMAL' | 'EXTRA';
  busyTimeoutMs: number;
  poolMax: number;
  /**
   * SQLite: most units of work `groupTransaction` puts in one shared commit. Default
   * DEFAULT_SQLITE_COMMIT_BATCH_MAX.
   */
  sqliteCommitBatchMax?: number;
  /**
   * SQLite: longest a `groupTransaction` unit waits for the others on their way to share its
   * commit (GroupOptions.othersComing). Default DEFAULT_SQLITE_COMMIT_DELAY_MS; 0 never waits.
   */
  sqliteCommitDelayMs?: number;
  /** SQLite: how many more must be expected within the delay for a unit to wait for them. Default DEFAULT_SQLITE_COMMIT_SIBLINGS. */
  sqliteCommitSiblings?: number;
  /**
   * SQLite: run `PRAGMA quick_check` when opening and refuse a damaged file (StorageError with
   * code STORAGE_CORRUPT). Default true.
   */
  sqliteQuickCheck?: boolean;
  /** Shortest time between two write probes while writes fail. Default DEFAULT_WRITE_PROBE_INTERVAL_MS. */
  writeProbeIntervalMs?: number;
  /**
   * PostgreSQL: longest wait for a connection, either a new one (TCP, TLS, authentication) or a
   * free one from a busy pool. Default DEFAULT_CONNECT_TIMEOUT_MS.
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL: called when an idle pooled connection fails (server restart, failover, a firewall
   * dropping it). The pool replaces the connection by itself; this is for the log. Default: a
   * process warning.
   */
  onBackgroundError?: (error: StorageError) => void;
}
