// The short crash torture (ts/hard/crash.ts) on every `npm test`: at least 20
// SIGKILL cycles, the first 15 at each named crash window once.
// Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runCrash } from './crash.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/crash.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('SIGKILL at random moments and at every named window leaves a prefix with every acknowledged commit, verify clean, time travel and replay agreeing', async () => {
  const lines: string[] = [];
  const f = await runCrash({ long: false, seed, log: (l) => lines.push(l) });
  console.log(`crash: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.cycles).toBeGreaterThanOrEqual(20);
  expect(f.lostCommits).toBe(0);
  expect(f.phantomCommits).toBe(0);
  expect(f.failures).toBe(0);
  expect(f.acknowledgedCommits).toBeGreaterThan(0);
  expect(f.replayChecks).toBeGreaterThan(0);
}, 120_000);

// Found by the long crash torture (seed 20240612, cycle 146): truncateLog's
// forced checkpoint writes a second meta with the same txn id as the checkpoint
// before it; at open the tie went to meta A, which could be the older one,
// whose history chain still listed the snapshots truncateLog dropped and whose
// pages later commits reused. Metas now carry a checkpoint sequence that breaks
// the tie (spec §3, rule 3).
it('after checkpoint, truncateLog and more commits, a crash does not bring back the dropped snapshots', async () => {
  const { FaultyFileSystem } = await import('../io/faulty.js');
  const { open, NorthstarError } = await import('../index.js');
  const fs = new FaultyFileSystem();
  const opts = { pageSize: 4096, history: { txns: 30 } };
  const db = open('/known/db', { ...opts, fileSystem: fs });
  const commit = (t: number): void => {
    const w = db.beginWrite();
    for (let i = 0; i < 40; i++) w.put(`k${String(i).padStart(3, '0')}`, `v${t}-${i}-${'x'.repeat(200)}`);
    w.commit();
  };
  for (let t = 1; t <= 10; t++) commit(t);
  db.checkpoint(); // meta B, txn 10
  for (let t = 11; t <= 20; t++) commit(t);
  db.checkpoint(); // meta A, txn 20
  db.truncateLog({ beforeTxnId: 20 }); // meta B, txn 20 too, history from 20 on
  for (let t = 21; t <= 25; t++) commit(t);
  const again = open('/known/db', { ...opts, fileSystem: fs.crash(() => 'keep') });
  // Snapshot 5 was dropped: SnapshotNotFound, or (if retained) its own values.
  let got: string;
  try {
    const r = again.beginRead({ txnId: 5 });
    got = r.get('k000')?.toString().slice(0, 6) ?? 'missing';
    r.close();
  } catch (err) {
    got = err instanceof NorthstarError ? err.code : String(err);
  }
  expect(['SnapshotNotFound', 'v5-0-x']).toContain(got);
  again.close();
  db.close();
});
