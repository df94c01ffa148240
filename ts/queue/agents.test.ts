// Many claimers on one queue across worker threads and child processes
// (issue #15 §4): a producer here enqueues while agents elsewhere claim and
// complete; an independent ledger of every completion's [id, token] must show
// each task completed exactly once: 0 duplicates, 0 lost.

import { describe, expect, it } from 'vitest';
import { openQueue } from '../index.js';
import { useTempDbs } from '../testing/fixtures.js';
import { usePeers } from '../testing/peers.js';

const tmp = useTempDbs('northstar-queue-agents-');
const peers = usePeers();

describe('agents in threads and processes', () => {
  it('every task is completed exactly once by 2 threads and 2 processes of 8 agents each while it is enqueued in chunks', async () => {
    const TOTAL = 800;
    const db = tmp.openDb({ sync: 'full' });
    const q = openQueue(db, 'work');
    await q.enqueue(Array.from({ length: 200 }, (_, i) => ({ type: i % 2 ? 'build' : 'test', payload: i })));
    const agents = await Promise.all([peers.thread(), peers.thread(), peers.process(), peers.process()]);
    for (const a of agents) await a.call('open', { path: tmp.dbPath(), options: { sync: 'full' } });
    const runs = agents.map((a) => a.call<{ done: Array<[number, number]> }>('queueAgents', { queue: 'work', agents: 8, total: TOTAL }));
    for (let sent = 200; sent < TOTAL; sent += 100) {
      await new Promise((r) => setTimeout(r, 20));
      await q.enqueue(Array.from({ length: 100 }, (_, i) => ({ type: 'build', payload: sent + i })));
    }
    const ledger = (await Promise.all(runs)).flatMap((r) => r.done);
    const byTask = new Map<number, number>();
    for (const [id] of ledger) byTask.set(id, (byTask.get(id) ?? 0) + 1);
    const duplicates = [...byTask.values()].filter((n) => n > 1).length;
    const lost = TOTAL - byTask.size;
    expect({ duplicates, lost }).toEqual({ duplicates: 0, lost: 0 });
    expect(new Set(ledger.map(([, token]) => token)).size).toBe(TOTAL);
    expect(q.stats()).toMatchObject({ counts: { pending: 0, claimed: 0, done: TOTAL }, completions: TOTAL });
    expect(q.verify().problems).toEqual([]);
    for (const a of agents) await a.stop();
    await q.close();
  }, 120_000);
});
