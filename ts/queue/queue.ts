// A task queue in a NorthstarDB database (spec/task_queue_v0.md): durable
// claims with fencing tokens, shared by every handle of the database in any
// thread or process. openQueue(db, name) returns a handle; every call that
// changes the queue is a write transaction of `db` (batched with the calls made
// at the same time: batcher.ts) and resolves once its commit is durable.

import type { Database } from '../db/database.js';
import { NorthstarError } from '../errors.js';
import type { ReadTxn } from '../txn/read.js';
import type { WriteTxn } from '../txn/write.js';
import { Batcher } from './batcher.js';
import { QueueKeys, readU64, TAG_AGE, TAG_COUNT, TAG_DELAYED, TAG_LEASE, TAG_READY, TAG_TASK, typeBytes } from './keys.js';
import { decodeTask, fromBlob, STATE_NAMES, TaskState, toBlob, type TaskRecord, type TaskStateName } from './task.js';
import type { ReadySource } from './ready.js';
import type { ClaimedTask, ClaimOptions, ListOptions, PurgeOptions, QueueOptions, QueueStats, TaskInfo } from './types.js';
import * as T from './transitions.js';
import { verifyQueue, type QueueVerifyReport } from './verify.js';
import { Wakeups } from './wakeups.js';
import { QueueWorker, type WorkHandler, type WorkOptions } from './worker.js';

export type { ClaimedTask, ClaimOptions, ListOptions, PurgeOptions, QueueOptions, QueueStats, TaskInfo } from './types.js';

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_QUEUE_MAX_ATTEMPTS = 5;
export const DEFAULT_QUEUE_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_QUEUE_RETENTION_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_QUEUE_MAX_FINISHED = 100_000;
export const DEFAULT_QUEUE_MAX_BATCH = 1024;
/** Finished tasks retention deletes per transaction, at most (so it never makes one transaction long). */
export const RETENTION_STEP = 32;
/** Delayed tasks promoted and expired leases taken back per claim transaction, at most. */
export const ADVANCE_STEP = 256;

function emptyCounts(): Record<TaskStateName, number> {
  return { pending: 0, claimed: 0, done: 0, dead: 0, cancelled: 0 };
}

function limitOption(v: unknown, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (v === Infinity) return Infinity;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new NorthstarError('InvalidArgument', `${what} must be a non-negative integer or Infinity, got ${String(v)}`);
  return v;
}

/** A task queue: see openQueue. */
export class Queue implements T.QueueCore {
  readonly keys: QueueKeys;
  readonly maxPayloadBytes: number;
  readonly defaultMaxAttempts: number;
  readonly clock: () => number;
  readonly readySource: ReadySource | null;
  private readonly retentionMs: number;
  private readonly maxFinished: number;
  private readonly batcher: Batcher;
  private readonly wakeups: Wakeups;
  private readonly workers = new Set<QueueWorker>();
  private closed = false;

  constructor(
    readonly db: Database,
    readonly name: string,
    options: QueueOptions = {},
  ) {
    if (options === null || typeof options !== 'object') throw new NorthstarError('InvalidArgument', 'queue options must be an object');
    this.keys = new QueueKeys(name);
    this.clock = options.clock ?? Date.now;
    this.readySource = options.cartridge ?? null;
    if (this.readySource !== null && typeof this.readySource.viewAt !== 'function') throw new NorthstarError('InvalidArgument', 'cartridge must be what openCartridge returns');
    if (typeof this.clock !== 'function') throw new NorthstarError('InvalidArgument', 'clock must be a function');
    this.maxPayloadBytes = limitOption(options.maxPayloadBytes, DEFAULT_QUEUE_MAX_PAYLOAD_BYTES, 'maxPayloadBytes');
    this.defaultMaxAttempts = limitOption(options.maxAttempts, DEFAULT_QUEUE_MAX_ATTEMPTS, 'maxAttempts');
    if (this.defaultMaxAttempts < 1 || this.defaultMaxAttempts === Infinity) throw new NorthstarError('InvalidArgument', 'maxAttempts must be a positive integer');
    this.retentionMs = limitOption(options.retention?.finishedMs, DEFAULT_QUEUE_RETENTION_MS, 'retention.finishedMs');
    this.maxFinished = limitOption(options.retention?.maxFinished, DEFAULT_QUEUE_MAX_FINISHED, 'retention.maxFinished');
    const maxBatch = limitOption(options.maxBatch, DEFAULT_QUEUE_MAX_BATCH, 'maxBatch');
    if (maxBatch < 1 || maxBatch === Infinity) throw new NorthstarError('InvalidArgument', 'maxBatch must be a positive integer');
    this.batcher = new Batcher(db, this, () => this.clock(), maxBatch, (tx) => this.retain(tx));
    this.wakeups = new Wakeups(db);
  }

  // ---- changing the queue ----

  /** Enqueues tasks in one transaction; resolves to their ids (an existing id for a live idempotency key). */
  async enqueue(tasks: readonly T.EnqueueSpec[]): Promise<number[]> {
    const checked = this.checkSpecs(tasks);
    return this.batcher.submit((tx) => checked.map((s) => T.enqueue(tx, s)));
  }

  /**
   * Enqueues tasks inside the caller's write transaction (the outbox): they
   * exist exactly when that transaction commits. Returns their ids.
   */
  enqueueIn(w: WriteTxn, tasks: readonly T.EnqueueSpec[]): number[] {
    this.checkOpen();
    const checked = this.checkSpecs(tasks);
    const tx = new T.QueueTxn(w, this, Math.floor(this.clock()));
    const ids = checked.map((s) => T.enqueue(tx, s));
    tx.flush();
    return ids;
  }

  /**
   * Claims up to `max` ready tasks (highest priority first, then oldest),
   * waiting up to `waitMs` for one when none is ready. Resolves once the
   * claim is durable.
   */
  async claim(options: ClaimOptions): Promise<ClaimedTask[]> {
    this.checkOpen();
    if (options === null || typeof options !== 'object') throw new NorthstarError('InvalidArgument', 'claim options must be an object');
    const { worker } = options;
    if (typeof worker !== 'string' || worker.length === 0 || Buffer.byteLength(worker) > 256) throw new NorthstarError('InvalidArgument', 'worker must be a non-empty string of at most 256 bytes');
    const types = options.types === undefined ? null : checkTypes(options.types);
    const leaseMs = options.leaseMs === undefined ? DEFAULT_LEASE_MS : T.checkMs(options.leaseMs, 'leaseMs', 1);
    const max = options.max ?? 1;
    if (!Number.isInteger(max) || max < 1) throw new NorthstarError('InvalidArgument', `max must be a positive integer, got ${String(max)}`);
    const waitMs = options.waitMs === undefined ? 0 : T.checkMs(options.waitMs, 'waitMs', 0);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const got = await this.batcher.submit((tx) => {
        T.advanceTime(tx, ADVANCE_STEP);
        return T.claim(tx, worker, types, leaseMs, max);
      });
      if (got.length > 0) return got.map((t) => claimedOf(t));
      const left = deadline - Date.now();
      if (left <= 0 || options.signal?.aborted || this.closed) return [];
      // Nothing ready: wait for a commit, or the next delayed task or lease expiry, then look
      // again with a read first, so that waiting claims cost no write transaction.
      for (let look = this.look(types); ; look = this.look(types)) {
        if (look.claimable) break;
        await this.wakeups.next(Math.min(deadline - Date.now(), look.nextMs), options.signal, look.txnId);
        if (Date.now() >= deadline || options.signal?.aborted || this.closed) break;
      }
    }
  }

  /**
   * Marks a claimed task done, with `result` stored (any JSON value or bytes).
   * `fn`, when given, runs inside the same transaction with its write
   * transaction: its writes and the completion commit together, or neither.
   * LeaseLost when the claim is no longer the task's current one.
   */
  async complete(task: T.ClaimRef, result?: unknown, fn?: (w: WriteTxn) => void | Promise<void>): Promise<void> {
    this.checkOpen();
    const blob = result === undefined ? null : toBlob(result, 'result');
    if (fn !== undefined && typeof fn !== 'function') throw new NorthstarError('InvalidArgument', 'complete: the third argument must be a function');
    if (fn === undefined) return this.batcher.submit((tx) => void T.complete(tx, task, blob));
    return this.batcher
      .submit((tx): unknown => {
        T.complete(tx, task, blob);
        return fn(tx.w);
      }, true)
      .then(() => undefined);
  }

  /**
   * Gives a claimed task back: pending again after `retryInMs` (default 0),
   * or dead once it has had maxAttempts claims. `error` is stored with it.
   */
  async fail(task: T.ClaimRef, options: { error?: unknown; retryInMs?: number } = {}): Promise<void> {
    this.checkOpen();
    const error = options.error === undefined ? null : toBlob(options.error, 'error');
    const retryInMs = options.retryInMs === undefined ? 0 : T.checkMs(options.retryInMs, 'retryInMs', 0);
    return this.batcher.submit((tx) => void T.fail(tx, task, error, retryInMs));
  }

  /** Extends a claim's lease to `leaseMs` from now (a heartbeat); resolves to the new leaseUntil. */
  async renew(task: T.ClaimRef, leaseMs: number = DEFAULT_LEASE_MS): Promise<number> {
    this.checkOpen();
    const ms = T.checkMs(leaseMs, 'leaseMs', 1);
    return this.batcher.submit((tx) => T.renew(tx, task, ms).leaseUntil).then((until) => {
      if (typeof task === 'object' && 'leaseUntil' in task) (task as ClaimedTask).leaseUntil = until;
      return until;
    });
  }

  /** Cancels a pending or claimed task; true if it was one (a claim it had is lost). */
  async cancel(id: number): Promise<boolean> {
    this.checkOpen();
    const n = T.checkId(id);
    return this.batcher.submit((tx) => T.cancel(tx, n));
  }

  /** Makes a claimed, dead or cancelled task pending again now, attempts from 0; true if it was one. */
  async requeue(id: number): Promise<boolean> {
    this.checkOpen();
    const n = T.checkId(id);
    return this.batcher.submit((tx) => T.requeue(tx, n));
  }

  /** Deletes finished tasks (default: done and dead, any age); resolves to how many went. */
  async purge(options: PurgeOptions = {}): Promise<number> {
    this.checkOpen();
    const names: readonly ('done' | 'dead' | 'cancelled')[] = options.states ?? ['done', 'dead'];
    if (!Array.isArray(names) || names.some((s) => s !== 'done' && s !== 'dead' && s !== 'cancelled')) {
      throw new NorthstarError('InvalidArgument', "purge: states must list 'done', 'dead' or 'cancelled'");
    }
    const states = new Set<number>(names.map((s: 'done' | 'dead' | 'cancelled') => TaskState[s]));
    const olderThanMs = options.olderThanMs === undefined ? 0 : T.checkMs(options.olderThanMs, 'olderThanMs', 0);
    let total = 0;
    let after: Buffer | null = null;
    for (;;) {
      const step: { gone: number; last: Buffer | null } = await this.batcher.submit((tx) => T.purge(tx, states, tx.now - olderThanMs, 1000, after));
      total += step.gone;
      if (step.last === null) return total;
      after = step.last;
    }
  }

  /** Runs a pool of workers: see QueueWorker. */
  work(options: WorkOptions, handler: WorkHandler): QueueWorker {
    this.checkOpen();
    const w = new QueueWorker(this, options, handler, () => this.workers.delete(w));
    this.workers.add(w);
    return w;
  }

  /** Stops this handle's workers (waiting for their running handlers), ends waiting claims and waits for commits in flight. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.workers].map((w) => w.close()));
    this.closed = true;
    this.wakeups.close();
    await this.batcher.settled();
  }

  // ---- reading the queue ----

  /** The task with this id, or undefined. */
  get(id: number): TaskInfo | undefined {
    this.checkOpen();
    const n = T.checkId(id);
    return this.read((r) => {
      const v = r.get(this.keys.task(n));
      return v === undefined ? undefined : infoOf(decodeTask(v, this.name));
    });
  }

  /** Tasks by id, filtered by state and type (for tools: it reads every task record up to `limit` matches). */
  list(options: ListOptions = {}): TaskInfo[] {
    this.checkOpen();
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 0) throw new NorthstarError('InvalidArgument', 'limit must be a non-negative integer');
    if (options.state !== undefined && !STATE_NAMES.includes(options.state)) throw new NorthstarError('InvalidArgument', `unknown state ${String(options.state)}`);
    const out: TaskInfo[] = [];
    if (limit === 0) return out;
    return this.read((r) => {
      for (const [, v] of r.scan(this.keys.table(TAG_TASK))) {
        const t = decodeTask(v, this.name);
        if (options.state !== undefined && STATE_NAMES[t.state] !== options.state) continue;
        if (options.type !== undefined && t.type !== options.type) continue;
        out.push(infoOf(t));
        if (out.length >= limit) break;
      }
      return out;
    });
  }

  /** Counts by state and type, the oldest ready task's age, counters: reads O(types) keys, whatever the number of tasks. */
  stats(): QueueStats {
    this.checkOpen();
    return this.read((r) => {
      const counts = emptyCounts();
      const byType: Record<string, Record<TaskStateName, number>> = {};
      for (const [k, v] of r.scan(this.keys.table(TAG_COUNT))) {
        const [state, type] = this.keys.countFieldsOf(k);
        const name = STATE_NAMES[state]!;
        const n = readU64(v, 0);
        counts[name] += n;
        (byType[type] ??= emptyCounts())[name] += n;
      }
      let oldestReadyAgeMs: number | null = null;
      for (const [k] of r.scan({ ...this.keys.table(TAG_AGE), limit: 1 })) oldestReadyAgeMs = Math.max(0, Math.floor(this.clock()) - this.keys.timeIdOf(k)[0]);
      const counter = (name: string): number => {
        const v = r.get(this.keys.counter(name));
        return v === undefined ? 0 : readU64(v, 0);
      };
      return { queue: this.name, counts, byType, oldestReadyAgeMs, enqueued: counter('seq'), claims: counter('claims'), completions: counter('completions') };
    });
  }

  /** Checks that the queue's indexes, counts and keys agree with its task records (reads the whole queue). */
  verify(): QueueVerifyReport {
    this.checkOpen();
    return this.read((r) => verifyQueue(r, this.keys, this.name, Math.floor(this.clock())));
  }

  // ---- internals ----

  private read<R>(fn: (r: ReadTxn) => R): R {
    const r = this.db.beginRead();
    try {
      return fn(r);
    } finally {
      r.close();
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new NorthstarError('Closed', `queue ${this.name} is closed`);
  }

  private checkSpecs(tasks: readonly T.EnqueueSpec[]): T.CheckedSpec[] {
    this.checkOpen();
    if (!Array.isArray(tasks)) throw new NorthstarError('InvalidArgument', 'enqueue takes an array of tasks');
    return tasks.map((t) => T.checkSpec(this, t));
  }

  /**
   * One read of what a waiting claim of `types` needs: whether it would find a
   * task now (a ready one of its types, a due delayed task, an expired lease),
   * else the ms until the first delayed task is due or the first lease expires
   * (Infinity: neither); `txnId`, the commit it read. No write transaction.
   */
  private look(types: readonly Buffer[] | null): { claimable: boolean; nextMs: number; txnId: number } {
    const now = Math.floor(this.clock());
    return this.read((r) => {
      const txnId = r.txnId;
      let next = Infinity;
      for (const tag of [TAG_DELAYED, TAG_LEASE]) {
        for (const [k] of r.scan({ ...this.keys.table(tag), limit: 1 })) next = Math.min(next, this.keys.timeIdOf(k)[0] - now);
      }
      if (next <= 0) return { claimable: true, nextMs: 0, txnId };
      const ranges = types === null ? [this.keys.table(TAG_READY)] : types.map((t) => this.keys.readyOfType(t));
      for (const range of ranges) for (const _ of r.scan({ ...range, limit: 1 })) return { claimable: true, nextMs: 0, txnId };
      return { claimable: false, nextMs: next, txnId };
    });
  }

  /** Retention, at the end of every transaction: a few finished tasks past their time or over the count. */
  private retain(tx: T.QueueTxn): void {
    const all = FINISHED;
    if (this.retentionMs !== Infinity) T.purge(tx, all, tx.now - this.retentionMs, RETENTION_STEP);
    if (this.maxFinished !== Infinity) {
      const over = tx.counter('finished') - this.maxFinished;
      if (over > 0) T.purge(tx, all, Infinity, Math.min(over, RETENTION_STEP));
    }
  }
}

const FINISHED: ReadonlySet<number> = new Set([TaskState.done, TaskState.dead, TaskState.cancelled]);

function checkTypes(types: readonly string[]): Buffer[] {
  if (!Array.isArray(types) || types.length === 0) throw new NorthstarError('InvalidArgument', 'types must be a non-empty array of strings');
  return [...new Set(types)].map((t) => typeBytes(t));
}

function claimedOf(t: TaskRecord): ClaimedTask {
  return {
    id: t.id,
    type: t.type,
    payload: fromBlob(t.payload),
    priority: t.priority,
    attempt: t.attempt,
    maxAttempts: t.maxAttempts,
    token: t.token,
    leaseUntil: t.leaseUntil,
    worker: t.worker,
    createdAt: t.createdAt,
  };
}

function infoOf(t: TaskRecord): TaskInfo {
  const info: TaskInfo = {
    id: t.id,
    type: t.type,
    state: STATE_NAMES[t.state]!,
    priority: t.priority,
    attempt: t.attempt,
    maxAttempts: t.maxAttempts,
    payload: fromBlob(t.payload),
    createdAt: t.createdAt,
    readyAt: t.readyAt,
    updatedAt: t.updatedAt,
  };
  if (t.result !== null) info.result = fromBlob(t.result);
  if (t.error !== null) info.error = fromBlob(t.error);
  if (t.worker !== '') info.worker = t.worker;
  if (t.token !== 0) info.token = t.token;
  if (t.state === TaskState.claimed) info.leaseUntil = t.leaseUntil;
  if (t.key !== '') info.key = t.key;
  if (t.finishedAt !== 0) info.finishedAt = t.finishedAt;
  return info;
}

/** Opens queue `name` of database `db` (created on first use; any number per database). */
export function openQueue(db: Database, name: string, options: QueueOptions = {}): Queue {
  return new Queue(db, name, options);
}

