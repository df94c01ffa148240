// The task queue's public shapes (spec/task_queue_v0.md): what openQueue
// takes, what claims hand out, what get, stats and list return. Apart from
// queue.ts so that the worker pool (worker.ts) needs only these, not the Queue.

import type { TaskStateName } from './task.js';
import type { ReadySource } from './ready.js';
import type { ClaimRef } from './transitions.js';

export interface QueueOptions {
  /** The clock leases and delays are measured on, in ms (default Date.now). Every handle of a queue must share it. */
  clock?: () => number;
  /** Largest payload, encoded (JSON text or the bytes), in bytes (default 1 MiB). */
  maxPayloadBytes?: number;
  /** Claims a task gets before a failure or an expired lease makes it dead, when enqueue does not say (default 5). */
  maxAttempts?: number;
  /**
   * Finished (done, dead, cancelled) tasks are deleted once they finished
   * `finishedMs` ago (default 24 h), or when more than `maxFinished` of them
   * are kept (default 100,000), oldest first, a few per transaction.
   * `Infinity` keeps them.
   */
  retention?: { finishedMs?: number; maxFinished?: number };
  /** Calls one transaction takes at most (default 1024). */
  maxBatch?: number;
  /**
   * Claims find their candidates through this cartridge (openCartridge(db))
   * instead of seeking the ready index of each type; every candidate is
   * re-checked in the claim transaction, and while the cartridge cannot be
   * brought to the transaction's txn the tree is read (spec/cartridge_v1.md
   * §7 item 5). Default: none.
   */
  cartridge?: ReadySource;
}

/** A task a claim handed out. Pass it back to complete, fail or renew. */
export interface ClaimedTask {
  id: number;
  type: string;
  payload: unknown;
  priority: number;
  /** Which claim of the task this is: 1 for the first. */
  attempt: number;
  maxAttempts: number;
  /** The fencing token of this claim: strictly increasing across every claim of the queue. */
  token: number;
  /** When the lease ends (ms of the queue clock) unless renewed. */
  leaseUntil: number;
  worker: string;
  createdAt: number;
}

/** A task as q.get() shows it. */
export interface TaskInfo {
  id: number;
  type: string;
  state: TaskStateName;
  priority: number;
  attempt: number;
  maxAttempts: number;
  payload: unknown;
  result?: unknown;
  error?: unknown;
  /** The worker of its latest claim. */
  worker?: string;
  token?: number;
  leaseUntil?: number;
  key?: string;
  createdAt: number;
  readyAt: number;
  updatedAt: number;
  finishedAt?: number;
}

export interface ClaimOptions {
  /** Who claims (stored with the task, shown by get and the CLI). */
  worker: string;
  /** Only tasks of these types (default: every type). */
  types?: readonly string[];
  /** Lease length in ms (default 30 s). */
  leaseMs?: number;
  /** Tasks to claim at most (default 1). */
  max?: number;
  /** When no task is ready, wait up to this long for one (default 0: answer at once). */
  waitMs?: number;
  /** Aborting it ends a wait early (the claim then resolves with what it has, usually []). */
  signal?: AbortSignal;
}

export interface QueueStats {
  queue: string;
  counts: Record<TaskStateName, number>;
  byType: Record<string, Record<TaskStateName, number>>;
  /** Age (ms) of the task that has been ready the longest, null when none is ready. */
  oldestReadyAgeMs: number | null;
  /** Tasks ever enqueued, claims and completions so far. */
  enqueued: number;
  claims: number;
  completions: number;
}

export interface PurgeOptions {
  /** Finished states to purge (default done and dead). */
  states?: readonly ('done' | 'dead' | 'cancelled')[];
  /** Only tasks that finished at least this long ago (default 0). */
  olderThanMs?: number;
}

export interface ListOptions {
  state?: TaskStateName;
  type?: string;
  /** At most this many (default 100). */
  limit?: number;
}

/** What a worker pool needs of its queue (Queue has it). */
export interface WorkQueue {
  claim(options: ClaimOptions): Promise<ClaimedTask[]>;
  complete(task: ClaimRef, result?: unknown): Promise<void>;
  fail(task: ClaimRef, options?: { error?: unknown; retryInMs?: number }): Promise<void>;
  renew(task: ClaimRef, leaseMs?: number): Promise<number>;
}
