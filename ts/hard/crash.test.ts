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
