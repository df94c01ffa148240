// Calls of one queue handle that change the queue share write transactions
// (spec/task_queue_v0.md §5): the calls made while the writer is busy run
// together, in the order they were made, in the next transaction, which
// commits with commitAsync; the transaction after it is built while the log
// sync of this one runs (group commit), so N concurrent claims cost one
// transaction and share one fdatasync. A call refused by its own checks
// (InvalidArgument, LeaseLost) changed nothing and fails alone; any other
// error aborts the transaction and fails every call in it.

import type { Database } from '../db/database.js';
import { NorthstarError } from '../errors.js';
import type { WriteTxn } from '../txn/write.js';
import { QueueTxn, type QueueCore } from './transitions.js';

/** One call waiting for a transaction. */
interface Call {
  /** Runs the call's transition; its result resolves the call once the commit is durable. */
  run: (tx: QueueTxn) => unknown;
  /** A call with the caller's own writes (complete with a callback): it gets a transaction to itself. */
  solo: boolean;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/** Whether an error is a call's own refusal, which leaves the transaction as it was. */
function refusal(err: unknown): boolean {
  return err instanceof NorthstarError && (err.code === 'InvalidArgument' || err.code === 'LeaseLost');
}

export class Batcher {
  private calls: Call[] = [];
  private draining = false;
  /** Commits in flight (their sync not yet done); close() waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly db: Database,
    private readonly core: QueueCore,
    private readonly clock: () => number,
    private readonly maxBatch: number,
    /** Runs at the end of every transaction, before its counters are written (retention). */
    private readonly housekeeping: (tx: QueueTxn) => void,
  ) {}

  /** Runs `run` in the next transaction; resolves with its result once that commit is durable. */
  submit<T>(run: (tx: QueueTxn) => T, solo = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.calls.push({ run, solo, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        // One turn later: every call made in this turn joins the first transaction.
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Resolves once every commit made so far is durable (or failed). */
  async settled(): Promise<void> {
    while (this.draining || this.inFlight.size > 0) {
      await Promise.allSettled([...this.inFlight]);
      if (this.draining) await new Promise((r) => setImmediate(r));
    }
  }

  private take(): Call[] {
    const first = this.calls[0]!;
    if (first.solo) return this.calls.splice(0, 1);
    let n = 1;
    while (n < this.calls.length && n < this.maxBatch && !this.calls[n]!.solo) n++;
    return this.calls.splice(0, n);
  }

  private async drain(): Promise<void> {
    try {
      while (this.calls.length > 0) {
        const batch = this.take();
        let w: WriteTxn;
        try {
          w = await this.db.beginWriteAsync({ timeoutMs: Infinity });
        } catch (err) {
          for (const c of batch) c.reject(err);
          continue;
        }
        await this.runBatch(w, batch);
      }
    } finally {
      this.draining = false;
    }
  }

  private async runBatch(w: WriteTxn, batch: Call[]): Promise<void> {
    const tx = new QueueTxn(w, this.core, Math.floor(this.clock()));
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let committed: Promise<number>;
    try {
      for (const c of batch) {
        try {
          let value = c.run(tx);
          // A solo call may hand back a promise (the caller's async callback): the transaction waits for it.
          if (c.solo && value instanceof Promise) value = await value;
          outcomes.push({ ok: true, value });
        } catch (err) {
          if (c.solo || !refusal(err)) throw err;
          outcomes.push({ ok: false, error: err });
        }
      }
      this.housekeeping(tx);
      tx.flush();
      committed = w.commitAsync();
    } catch (err) {
      w.abort();
      for (const c of batch) c.reject(err);
      return;
    }
    const done = committed.then(
      () => {
        for (let i = 0; i < batch.length; i++) {
          const o = outcomes[i]!;
          if (o.ok) batch[i]!.resolve(o.value);
          else batch[i]!.reject(o.error);
        }
      },
      (err: unknown) => {
        for (const c of batch) c.reject(err);
      },
    );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }
}
