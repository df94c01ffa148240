// NorthstarDB task queue: a producer and a pool of agents in worker threads.
// Run after `npm install`:  node examples/agents.mjs
//
// The main thread enqueues 200 tasks (some with priorities, one with an
// idempotency key sent twice, one that fails until its last attempt); four
// worker threads each run q.work() with 8 concurrent handlers on the same
// database file. Every task is done exactly once; the main thread then shows
// the queue's stats, a task's record and verify().
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { open, openQueue } from '../dist/index.js';

const TASKS = 200;

if (isMainThread) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-agents-'));
  const file = path.join(dir, 'agents.ndb');
  const db = open(file, { sync: 'full' });
  const q = openQueue(db, 'work');

  // Agents first: they wait for tasks (claim with waitMs) and wake when the producer enqueues.
  const agents = Array.from({ length: 4 }, (_, n) => new Worker(new URL(import.meta.url), { workerData: { file, n } }));
  const finished = agents.map((w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }));

  const ids = await q.enqueue(
    Array.from({ length: TASKS }, (_, i) => ({ type: i % 3 === 0 ? 'test' : 'build', payload: { repo: `repo-${i}` }, priority: i % 10 === 0 ? 5 : 0 })),
  );
  // An idempotency key: enqueueing the same live key again returns the same task.
  const [a] = await q.enqueue([{ type: 'build', payload: { repo: 'x' }, key: 'build:x@abc' }]);
  const [b] = await q.enqueue([{ type: 'build', payload: { repo: 'x' }, key: 'build:x@abc' }]);
  console.log(`enqueued ${ids.length + 1} tasks; the key build:x@abc gave task ${a} both times: ${a === b}`);
  // A task that fails on its first two attempts and succeeds on the third.
  const [flaky] = await q.enqueue([{ type: 'flaky', payload: { failUntil: 3 }, maxAttempts: 3 }]);

  // Wait for every task to finish, then stop the agents.
  while (q.stats().counts.done < TASKS + 2) await new Promise((r) => setTimeout(r, 20));
  for (const w of agents) w.postMessage('stop');
  const perAgent = await Promise.all(finished);
  console.log(`completed per agent thread: ${perAgent.join(', ')} (sum ${perAgent.reduce((x, y) => x + y, 0)})`);

  const s = q.stats();
  console.log(`stats: ${JSON.stringify(s.counts)}, claims ${s.claims}, completions ${s.completions}`);
  const t = q.get(flaky);
  console.log(`task ${flaky}: ${t.state} after ${t.attempt} attempts, last error ${JSON.stringify(t.error)}, result ${JSON.stringify(t.result)}`);
  console.log(`verify: ${JSON.stringify(q.verify())}`);
  await q.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
} else {
  // An agent thread: its own handle on the same file, a pool of 8 handlers.
  const db = open(workerData.file, { sync: 'full' });
  const q = openQueue(db, 'work');
  const worker = q.work({ concurrency: 8, leaseMs: 10_000, retryDelayMs: () => 10 }, async (task) => {
    if (task.type === 'flaky' && task.attempt < task.payload.failUntil) throw new Error(`attempt ${task.attempt} failed`);
    await new Promise((r) => setTimeout(r, 1)); // the work itself
    return { builtBy: `agent-${workerData.n}`, attempt: task.attempt };
  });
  parentPort.once('message', async () => {
    await worker.close(); // stops claiming, lets running handlers finish and complete
    await q.close();
    db.close();
    parentPort.postMessage(worker.completed);
  });
}
