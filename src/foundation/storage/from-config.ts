import type { LoadedConfig } from '../config/index.ts';
import type { StorageOptions } from './database.ts';

/** Storage options from the configuration: the server and the CLI open the database alike. */
export function storageOptionsFrom(loaded: LoadedConfig, overrides: Partial<StorageOptions> = {}): StorageOptions {
  const { storage } = loaded.config;
  return {
    url: storage.url,
    sqliteFile: loaded.paths.sqliteFile,
    sqliteSynchronous: storage.sqlite_synchronous,
    busyTimeoutMs: storage.busy_timeout_ms,
    connectTimeoutMs: storage.connect_timeout_ms,
    poolMax: storage.pool_max,
    sqliteCommitBatchMax: storage.sqlite_commit_batch_max,
    sqliteCommitDelayMs: storage.sqlite_commit_delay_ms,
    sqliteCommitSiblings: storage.sqlite_commit_siblings,
    sqliteQuickCheck: storage.sqlite_quick_check,
    writeProbeIntervalMs: storage.write_probe_interval_ms,
    ...overrides,
  };
}
