export { Database, DEFAULT_WRITE_TIMEOUT_MS, open, openAsync } from './database.js';
export type { DatabaseEvents } from './database.js';
export { DEFAULT_CACHE_SIZE, DEFAULT_CHECKPOINT_COMMITS, DEFAULT_CHECKPOINT_FREED_BYTES, DEFAULT_CHECKPOINT_LOG_BYTES, DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_TXNS, DEFAULT_LOG_MIN_DROP_BYTES, DEFAULT_LOG_RETAIN_BYTES, DEFAULT_LOG_RETAIN_TXNS, OPEN_LOCK_TIMEOUT_MS } from './options.js';
export type { BeginReadOptions, BeginWriteOptions, CommitEvent, DatabaseStats, OpenOptions, SyncMode, WaitOptions } from './options.js';
