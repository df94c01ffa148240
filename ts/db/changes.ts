// Hearing at once of what other handles do (spec/concurrency_v0.md §2.6): a
// handle in any thread or process that publishes a commit or lets the writer
// go bumps the lock file's change word and wakes its watchers. One watch per
// handle, started the first time something here waits (a beginWriteAsync
// waiter, a queue claim waiting for a task) and kept until the handle closes:
// a thread of the addon sleeping on a futex, costing nothing while idle and
// not keeping the event loop alive. Its callbacks come on this thread's event
// loop, some 20 µs after the change; changes close together come as one.
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
  e.changeListeners.add(listener);
  return true;
}

export function unlisten(e: Engine, listener: () => void): void {
  e.changeListeners.delete(listener);
}

/** Stops the watch (the handle closes). */
export function stopWatching(e: Engine): void {
  e.changeListeners.clear();
  e.changeWatch?.close();
  e.changeWatch = null;
}
