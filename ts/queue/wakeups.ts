// Waking claims that wait for a task (claim's waitMs, spec/task_queue_v0.md
// §6): a waiting claim looks again when something may have made a task
// claimable, never on a busy loop that would cost readers or the writer.
//
// - A commit of this handle, or one of another handle that this handle has
//   seen ('commit' events of the Database).
// - A commit of another thread or process: db.txnId reads the lock file's
//   published txn id (a few atomic loads, no read transaction) every
//   POLL_MS while a claim waits.
// - Time: the first delayed task's ready time and the first lease's expiry,
//   read once per look (a timer to the earlier of them).

import type { Database } from '../db/database.js';

/** How often a waiting claim looks at the lock file for other handles' commits. */
export const POLL_MS = 2;

export class Wakeups {
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private seen = -1;
  private readonly onCommit = (): void => this.wakeAll();

  constructor(private readonly db: Database) {}

  /** Resolves at the next wakeup, after `untilMs` ms, or when `signal` aborts, whichever comes first. */
  next(untilMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let timeout: NodeJS.Timeout | null = null;
      const done = (): void => {
        if (timeout !== null) clearTimeout(timeout);
        signal?.removeEventListener('abort', done);
        if (this.waiters.delete(done) && this.waiters.size === 0) this.stop();
        resolve();
      };
      if (signal?.aborted) return resolve();
      signal?.addEventListener('abort', done, { once: true });
      timeout = setTimeout(done, Math.max(0, untilMs));
      if (this.waiters.size === 0) this.start();
      this.waiters.add(done);
    });
  }

  /** Wakes every waiting claim (a commit here, or a change seen in the lock file). */
  wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }

  private start(): void {
    this.db.on('commit', this.onCommit);
    this.seen = this.db.txnId;
    this.timer = setInterval(() => {
      let now: number;
      try {
        now = this.db.txnId;
      } catch {
        // Closed: the waiting claims find out when they look again.
        this.wakeAll();
        return;
      }
      if (now !== this.seen) {
        this.seen = now;
        this.wakeAll();
      }
    }, POLL_MS);
    this.timer.unref();
  }

  private stop(): void {
    this.db.off('commit', this.onCommit);
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.wakeAll();
  }
}
