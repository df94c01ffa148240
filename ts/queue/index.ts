export { openQueue, Queue, DEFAULT_LEASE_MS, DEFAULT_QUEUE_MAX_ATTEMPTS, DEFAULT_QUEUE_MAX_BATCH, DEFAULT_QUEUE_MAX_FINISHED, DEFAULT_QUEUE_MAX_PAYLOAD_BYTES, DEFAULT_QUEUE_RETENTION_MS } from './queue.js';
export type { QueueOptions, ClaimedTask, TaskInfo, ClaimOptions, QueueStats, PurgeOptions, ListOptions } from './queue.js';
export type { EnqueueSpec, ClaimRef } from './transitions.js';
export type { TaskStateName } from './task.js';
export type { QueueVerifyReport } from './verify.js';
export { QueueWorker, DEFAULT_RETRY_DELAY_MS } from './worker.js';
export type { WorkOptions, WorkHandler } from './worker.js';
