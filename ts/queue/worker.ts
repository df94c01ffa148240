// q.work(): a pool of workers in this thread (spec/task_queue_v0.md §6). It
// claims up to `concurrency` tasks at a time, runs the handler for each,
// renews each lease every third of its length while the handler runs, and
// completes the task with the handler's result or fails it with its error
// (retried after a backoff, dead after maxAttempts). A lease it loses (the
// renewal answers LeaseLost: it expired and another worker claimed the task,
// or the task was cancelled) aborts the handler's signal, and the outcome of
// that run is dropped: the fencing token makes sure it could change nothing.

import * as os from 'node:os';
import { threadId } from 'node:worker_threads';
import { NorthstarError } from '../errors.js';
import type { ClaimedTask, WorkQueue } from './types.js';

export type WorkHandler = (task: ClaimedTask, signal: AbortSignal) => unknown;

export interface WorkOptions {
  /** Only these types (default: every type). */
  types?: readonly string[];
  /** Handlers running at once, at most (default 1). */
  concurrency?: number;
  /** Lease of each claim, renewed every third of it while the handler runs (default 30 s). */
  leaseMs?: number;
  /** Name stored with its claims (default host:pid:thread:n). */
  worker?: string;
  /** Delay before a failed task is retried, by the attempt that failed (default 1 s doubling, at most 5 min). */
  retryDelayMs?: (attempt: number) => number;
  /** A handler's error, as stored with the task (default: its message). */
  errorOf?: (err: unknown) => unknown;
}

let workers = 0;

export const DEFAULT_RETRY_DELAY_MS = (attempt: number): number => Math.min(1000 * 2 ** Math.max(0, attempt - 1), 300_000);

export class QueueWorker {
  readonly name: string;
  /** Tasks completed, failed, and runs dropped because their lease was lost. */
  completed = 0;
  failed = 0;
  lost = 0;
  /** The last error a completion or failure met other than LeaseLost (an I/O error, the database closed). */
  lastError: unknown = null;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly running = new Set<Promise<void>>();
  private readonly stop = new AbortController();
  private readonly loop: Promise<void>;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly q: WorkQueue,
    private readonly options: WorkOptions,
    private readonly handler: WorkHandler,
    private readonly onClosed: () => void,
  ) {
    if (options === null || typeof options !== 'object') throw new NorthstarError('InvalidArgument', 'work options must be an object');
    if (typeof handler !== 'function') throw new NorthstarError('InvalidArgument', 'work(options, handler): handler must be a function');
    this.concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new NorthstarError('InvalidArgument', 'concurrency must be a positive integer');
    this.leaseMs = options.leaseMs ?? 30_000;
    if (!Number.isFinite(this.leaseMs) || this.leaseMs < 3) throw new NorthstarError('InvalidArgument', 'leaseMs must be a finite number >= 3');
    this.name = options.worker ?? `${os.hostname()}:${process.pid}:${threadId}:${++workers}`;
    this.loop = this.run();
  }

  /** Stops claiming, waits for the running handlers and their completions; claims nothing more and releases nothing twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      const wake = this.slotFreed;
      this.slotFreed = null;
      wake?.();
      await this.loop;
      await Promise.allSettled([...this.running]);
      this.onClosed();
    })();
    return this.closing;
  }

  /** Handlers running now: a slot frees when its handler returns, before its completion is durable. */
  private handling = 0;
  private slotFreed: (() => void) | null = null;

  private async run(): Promise<void> {
    while (!this.stop.signal.aborted) {
      // The next claim goes out as soon as a handler returns, so it shares a transaction
      // and an fdatasync with that handler's completion instead of waiting for it.
      const free = this.concurrency - this.handling;
      if (free === 0) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      let tasks: ClaimedTask[];
      try {
        tasks = await this.q.claim({
          worker: this.name,
          ...(this.options.types === undefined ? {} : { types: this.options.types }),
          leaseMs: this.leaseMs,
          max: free,
          waitMs: 1000,
          signal: this.stop.signal,
        });
      } catch (err) {
        if (err instanceof NorthstarError && err.code === 'Closed') return;
        // A failed claim commit (I/O): try again shortly rather than spin.
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const t of tasks) {
        this.handling++;
        const p = this.runOne(t).finally(() => this.running.delete(p));
        this.running.add(p);
      }
    }
  }

  private async runOne(task: ClaimedTask): Promise<void> {
    const lost = new AbortController();
    const timer = setInterval(() => {
      this.q.renew(task, this.leaseMs).catch((err: unknown) => {
        if (err instanceof NorthstarError && err.code === 'LeaseLost') lost.abort(err);
      });
    }, Math.max(1, Math.floor(this.leaseMs / 3)));
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await this.handler(task, lost.signal) };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      clearInterval(timer);
      this.handling--;
      const wake = this.slotFreed;
      this.slotFreed = null;
      wake?.();
    }
    try {
      if (outcome.ok) {
        await this.q.complete(task, outcome.value);
        this.completed++;
      } else {
        const errorOf = this.options.errorOf ?? ((e: unknown) => (e instanceof Error ? e.message : String(e)));
        const retryInMs = (this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS)(task.attempt);
        await this.q.fail(task, { error: errorOf(outcome.error), retryInMs });
        this.failed++;
      }
    } catch (err) {
      if (err instanceof NorthstarError && err.code === 'LeaseLost') this.lost++;
      // The task stays claimed until its lease expires, then another claim takes it back.
      else this.lastError = err;
    }
  }
}
