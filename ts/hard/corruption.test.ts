// The bounded corruption suite (ts/hard/corruption.ts) on every `npm test`:
// bit flips in tree, freelist, history and free pages of a closed database,
// and whole-file damage. Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runCorruption } from './corruption.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/corruption.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('damaged pages are detected by every read that touches them and named exactly by verify; no read returns a wrong value; damaged files fail to open with NorthstarErrors', async () => {
  const lines: string[] = [];
  const f = await runCorruption({ long: false, seed, log: (l) => lines.push(l), trials: 20, keys: 600 });
  console.log(`corruption: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.wrongValuesReturned).toBe(0);
  expect(f.missedDetections).toBe(0);
  expect(f.trials).toBeGreaterThanOrEqual(15);
  expect(f.readsCorruptDetected).toBeGreaterThan(0);
  expect(f.verifyExact).toBe(f.verifyRuns);
  expect(f.cliVerifyExact).toBe(f.cliVerifyRuns);
  expect(f.cliVerifyRuns).toBeGreaterThan(0);
  expect(f.chainDamageRefused).toBe(f.chainDamageTrials);
  expect(f.chainDamageTrials).toBeGreaterThan(0);
  expect(f.wholeFileCleanErrors + f.wholeFileOpenedIntact).toBe(f.wholeFileCases);
}, 120_000);
