export { startReplication, Replication, DEFAULT_QUORUM_TIMEOUT_MS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_HASH_EVERY_TXNS, DEFAULT_SNAPSHOT_EVERY_TXNS, DEFAULT_KEEP_SNAPSHOTS } from './primary.js';
export type { ReplicationOptions, ReplicationStats, ReplicationMode } from './primary.js';
export { openReplica, Replica } from './replica.js';
export type { ReplicaOptions, ReplicaLag, ReplicaStats } from './replica.js';
export { DEFAULT_STREAM_REPLICAS, DEFAULT_STREAM_MAX_BYTES, DEFAULT_CONNECT_TIMEOUT_MS } from './stream.js';
export type { StreamOptions } from './stream.js';
