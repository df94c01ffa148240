// The short task-queue crash torture (ts/hard/queuecrash.ts) on every
// `npm test`: agent processes SIGKILLed at random moments and at named crash
// windows; every acknowledged enqueue and completion survives, no task is
// completed twice, none stays stuck past its lease.
// Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runQueueCrash } from './queuecrash.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/queuecrash.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('agents killed at random and at named windows: 0 lost enqueues, 0 lost completions, 0 duplicates, 0 phantoms, 0 stuck', async () => {
  const lines: string[] = [];
  const f = await runQueueCrash({ long: false, seed, log: (l) => lines.push(l) });
  console.log(`queuecrash: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.cycles).toBe(6);
  expect(f).toMatchObject({ duplicates: 0, phantoms: 0, lostEnqueues: 0, lostCompletions: 0, stuck: 0, verifyProblems: 0, childErrors: 0 });
  expect(f.completions).toBeGreaterThan(0);
}, 180_000);
