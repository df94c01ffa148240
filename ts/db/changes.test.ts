// Hearing other handles' changes (ts/db/changes.ts, spec/concurrency_v0.md
// §2.6): where the handle can watch the lock file's change word (the native
// store on Linux), a listener hears of another handle's commit and writer
// release without any timer of its own; elsewhere listen() says no and the
// callers look on timers. Both implementations run it: the fallback's file
// store cannot watch.

import { describe, expect, it } from 'vitest';
import { open } from '../index.js';
import { implementation } from '../native/kernels.js';
import { useTempDbs } from '../testing/fixtures.js';
import { listen, unlisten } from './changes.js';
import { engineOfDatabase } from './internal.js';

const tmp = useTempDbs('northstar-changes-');
const watches = implementation === 'native' && process.platform === 'linux';

/** Resolves once fn() holds, looking every millisecond (up to 5 s). */
async function until(fn: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('listen (changes.ts)', () => {
  it.runIf(watches)('hears another handle commit and let the writer go; stops hearing once unlistened or closed', async () => {
    const a = tmp.openDb();
    const b = tmp.track(open(tmp.dbPath()));
    const e = engineOfDatabase(a);
    let heard = 0;
    const listener = (): number => heard++;
    expect(listen(e, listener)).toBe(true);
    const w = b.beginWrite();
    w.put('k', 'v');
    await w.commitAsync();
    await until(() => heard >= 1);
    expect(a.txnId).toBe(b.txnId); // what it heard is there to see
    unlisten(e, listener);
    const before = heard;
    const w2 = b.beginWrite();
    w2.put('k', 'v2');
    await w2.commitAsync();
    await new Promise((r) => setTimeout(r, 30));
    expect(heard).toBe(before);
    a.close();
    expect(listen(e, listener)).toBe(false);
  });

  it.runIf(watches)('counts listening handles in W_WATCHERS; with none counted a commit neither bumps nor wakes, and a new listener is called once at once', async () => {
    const { nativeSharedFile } = await import('../native/shared_file.js');
    const { LOCK_FILE_SIZE, W_CHANGES, W_WATCHERS } = await import('../shared/layout.js');
    const a = tmp.openDb();
    const b = tmp.track(open(tmp.dbPath()));
    const SharedFile = nativeSharedFile()!;
    const table = new SharedFile(`${a.path}.lock`, LOCK_FILE_SIZE);
    try {
      const commit = async (v: string): Promise<void> => {
        const w = b.beginWrite();
        w.put('k', v);
        await w.commitAsync();
      };
      expect(table.load(W_WATCHERS)).toBe(0);
      const quiet = table.load(W_CHANGES);
      await commit('1');
      expect(table.load(W_CHANGES)).toBe(quiet); // nobody listens: no bump, no futex wake
      const e = engineOfDatabase(a);
      let heard = 0;
      const l1 = (): number => heard++;
      const l2 = (): void => {};
      expect(listen(e, l1)).toBe(true);
      expect(listen(e, l2)).toBe(true);
      expect(table.load(W_WATCHERS)).toBe(1); // one per handle, not per listener
      await until(() => heard >= 1); // the call right after counting: a change made just before it is found here
      const seen = heard;
      await commit('2');
      expect(table.load(W_CHANGES)).toBeGreaterThan(quiet);
      await until(() => heard > seen);
      unlisten(e, l1);
      expect(table.load(W_WATCHERS)).toBe(1);
      unlisten(e, l2);
      expect(table.load(W_WATCHERS)).toBe(0);
      expect(listen(e, l1)).toBe(true);
      expect(table.load(W_WATCHERS)).toBe(1);
      a.close(); // a handle that closes while listening takes itself out
      expect(table.load(W_WATCHERS)).toBe(0);
    } finally {
      table.close();
    }
  });

  it.runIf(!watches)('says no where the store cannot watch (the file fallback, or not Linux): callers look on timers', () => {
    const a = tmp.openDb();
    expect(listen(engineOfDatabase(a), () => {})).toBe(false);
  });

  it('a queue claim waiting for a task in one handle takes a task another handle enqueues', async () => {
    const { openQueue } = await import('../queue/index.js');
    const a = tmp.openDb();
    const b = tmp.track(open(tmp.dbPath()));
    const qa = openQueue(a, 'work');
    const qb = openQueue(b, 'work');
    const waiting = qa.claim({ worker: 'w', waitMs: 5000 });
    await new Promise((r) => setTimeout(r, 20));
    const [id] = await qb.enqueue([{ type: 't', payload: 1 }]);
    const got = await waiting;
    expect(got.map((t) => t.id)).toEqual([id]);
    await qa.close();
    await qb.close();
  });
});
