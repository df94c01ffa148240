// Hearing at once of what other handles do (spec/concurrency_v0.md §2.6): a
// handle in any thread or process that publishes a commit or lets the writer
// go bumps the lock file's change word and wakes its watchers. One watch per
// handle, started the first time something here waits (a beginWriteAsync
// waiter, a queue claim waiting for a task) and kept until the handle closes:
// a thread of the addon sleeping on a futex, costing nothing while idle and
// not keeping the event loop alive. Its callbacks come on this thread's event
// loop, some 20 µs after the change; changes close together come as one.
//
// Handles are counted in the lock file while they have listeners (§2.6,
// W_WATCHERS), and a publish or writer release with nobody counted skips its
// bump and wake-up. So a handle that starts listening counts itself first and
// then calls its listeners once (setImmediate): a change made before it was
// counted woke nobody, and that call is where the listeners find it.
//
// Where the store cannot watch (not Linux, the file fallback, a custom file
// system) listen() returns false and callers look on a timer as before. Even
// where it can, callers keep a slow timer: a process that dies holding the
// writer lock releases it without a signal.

import type { Engine } from './engine.js';

/**
 * Adds `listener`, called after changes by any handle (this one's included:
 * listeners check what changed). Returns false, adding nothing, when the
 * handle cannot watch.
 */
export function listen(e: Engine, listener: () => void): boolean {
  if (e.closed) return false;
  if (e.changeWatch === undefined) {
    e.changeWatch = e.coord.watchChanges(() => {
      for (const l of e.changeListeners) l();
    });
  }
  if (e.changeWatch === null) return false;
  if (e.changeListeners.has(listener)) return true;
  e.changeListeners.add(listener);
  if (e.changeListeners.size === 1) {
    e.coord.countListener(true);
    setImmediate(() => {
      if (!e.closed && e.changeListeners.has(listener)) listener();
    });
  }
  return true;
}

export function unlisten(e: Engine, listener: () => void): void {
  if (e.changeListeners.delete(listener) && e.changeListeners.size === 0 && !e.closed) e.coord.countListener(false);
}

/** Stops the watch (the handle closes; its coordinator is still open). */
export function stopWatching(e: Engine): void {
  try {
    if (e.changeListeners.size > 0) e.coord.countListener(false);
  } catch {
    // The count stays one too high: publishes go on waking watchers, as before counting.
  }
  e.changeListeners.clear();
  e.changeWatch?.close();
  e.changeWatch = null;
}
