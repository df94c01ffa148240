// The short power-loss exploration (ts/hard/powerloss.ts) on every `npm test`:
// every crash state at every fdatasync of a ~50-commit workload where the
// pending writes are few, samples elsewhere, and the freeze-at-sync mode.
// Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runPowerloss } from './powerloss.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/powerloss.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('every crash state at every fdatasync recovers a prefix with every acknowledged commit, the model state and verify clean', async () => {
  const lines: string[] = [];
  const f = await runPowerloss({ long: false, seed, log: (l) => lines.push(l) });
  console.log(`powerloss: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.lostCommits).toBe(0);
  expect(f.phantomCommits).toBe(0);
  expect(f.exhaustiveSyncPoints).toBeGreaterThan(0);
  // A floor that proves the exploration ran wide, below what any seed gives:
  // 959–1,971 states over 12 seeds of the short form (seed 1362254931: 984,
  // which the former floor of 1,000 failed).
  expect(f.statesExplored).toBeGreaterThan(500);
}, 120_000);
