// The I/O fault suite (ts/hard/iofaults.ts) on every `npm test`: EIO and ENOSPC
// at every I/O call of commit, commitAsync, checkpoint, recovery and file
// growth (once and forever), torn writes, torn metas, pages at the wrong
// offset, stale pages at their own offset, torn and damaged log records. Replay with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runIofaults } from './iofaults.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/iofaults.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('I/O errors and torn writes fail the operation with IoError/OutOfSpace, nothing half-visible, and every image reopens with every acknowledged commit', async () => {
  const lines: string[] = [];
  const f = await runIofaults({ long: false, seed, log: (l) => lines.push(l) });
  console.log(`iofaults: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.lostCommits).toBe(0);
  expect(f.phantomCommits).toBe(0);
  expect(f.halfVisible).toBe(0);
  expect(f.wrongErrorCodes).toBe(0);
  expect(f.operationsFailed).toBeGreaterThan(100);
  expect(f.tornMetaCases).toBeGreaterThanOrEqual(520);
  expect(f.wrongOffsetPagesDetected).toBe(20);
  // Stale but valid pages at their own offset: every read through one is Corrupt, none returns an old value.
  expect(f.staleReadsOldValues).toBe(0);
  expect(f.staleReadsMissed).toBe(0);
  expect(f.stalePagesDetected).toBeGreaterThan(0);
  expect(f.staleReadsDetected).toBeGreaterThan(0);
  expect(f.stalePagesDetected! + f.stalePagesUnreached!).toBe(f.stalePages);
}, 120_000);
