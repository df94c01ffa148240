// Waking claims that wait for a task (claim's waitMs, spec/task_queue_v0.md
// §6): a waiting claim looks again when something may have made a task
// claimable, never on a busy loop that would cost readers or the writer.
//
// - A commit of this handle, or one of another handle that this handle has
//   seen ('commit' events of the Database).
// - A commit of another thread or process: the handle's change watch
//   (ts/db/changes.ts, spec/concurrency_v0.md §2.6) calls soon after any
//   handle publishes; where the handle cannot watch, db.txnId is read every
//   POLL_MS while a claim waits. Either way a wake-up happens only when the
//   published txn id (a few atomic loads, no read transaction) moved.
// - Time: the first delayed task's ready time and the first lease's expiry,
//   read once per look (a timer to the earlier of them).

import { listen, unlisten } from '../db/changes.js';
import type { Database } from '../db/database.js';
import type { CommitEvent } from '../db/options.js';
import { engineOfDatabase } from '../db/internal.js';

/** How often a waiting claim looks at the lock file for other handles' commits, where the handle cannot watch it. */
export const POLL_MS = 2;

export class Wakeups {
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private seen = -1;
  private listening = false;
  private readonly onCommit = (ev: CommitEvent): void => {
    // Seen here first (this handle's commit, or another's it caught up with):
    // the watch's call for it then finds nothing new. Not db.txnId: reading it
    // catches up, which emits 'commit' events, this one among them.
    if (ev.txnId > this.seen) this.seen = ev.txnId;
    this.wakeAll();
  };

  constructor(private readonly db: Database) {}

  /**
   * Resolves at the next wakeup, after `untilMs` ms, or when `signal` aborts,
   * whichever comes first; at once when the published txn is no longer
   * `lookedAt`, the commit the caller's last look read (a change between that
   * look and this call would wake nobody).
   */
  next(untilMs: number, signal: AbortSignal | undefined, lookedAt: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.published() !== lookedAt) return resolve();
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
      if (this.waiters.size === 0) this.start(lookedAt);
      this.waiters.add(done);
    });
  }

  /** The published txn id (reading it catches up), or null once the handle is closed. */
  private published(): number | null {
    try {
      return this.db.txnId;
    } catch {
      return null;
    }
  }

  /** Wakes every waiting claim (a commit here, or a change seen in the lock file). */
  wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }

  /** The first waiter came; `seen`: the published txn it has just looked at. */
  private start(seen: number): void {
    this.db.on('commit', this.onCommit);
    this.seen = seen;
    if (listen(engineOfDatabase(this.db), this.look)) {
      this.listening = true;
      return;
    }
    this.timer = setInterval(this.look, POLL_MS);
    this.timer.unref();
  }

  /** Wakes the waiting claims if the published txn id moved since the last look. */
  private readonly look = (): void => {
    const now = this.published();
    if (now === null) {
      // Closed: the waiting claims find out when they look again.
      this.wakeAll();
      return;
    }
    if (now !== this.seen) {
      this.seen = now;
      this.wakeAll();
    }
  };

  private stop(): void {
    this.db.off('commit', this.onCommit);
    if (this.listening) unlisten(engineOfDatabase(this.db), this.look);
    this.listening = false;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.wakeAll();
  }
}
