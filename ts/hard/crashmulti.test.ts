// The short multi-process crash torture (ts/hard/crashmulti.ts) on every
// `npm test`: 2–3 processes on one database, SIGKILLed together, one at a time
// or at a named crash window while the others go on.
// Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runCrashMulti } from './crashmulti.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/crashmulti.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('processes SIGKILLed at random moments and at named windows, alone or together: the survivors take over and read the model, recovery keeps every acknowledged commit, verify, time travel and replay agree', async () => {
  const lines: string[] = [];
  const f = await runCrashMulti({ long: false, seed, log: (l) => lines.push(l) });
  console.log(`crashmulti: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.cycles).toBeGreaterThanOrEqual(10);
  expect(f.lostCommits).toBe(0);
  expect(f.phantomCommits).toBe(0);
  expect(f.childErrors).toBe(0);
  expect(f.acknowledgedCommits).toBeGreaterThan(0);
  expect(f.survivorReads).toBeGreaterThan(0);
  // Replay needs the log from txn 1: a cycle that ran truncateLog counts as skipped instead.
  expect(f.replayChecks + f.replaySkippedAfterTruncateLog).toBeGreaterThan(0);
}, 180_000);
