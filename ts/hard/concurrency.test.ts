// The bounded concurrency torture (ts/hard/concurrency.ts) on every `npm test`:
// async readers interleaved with a bank-transfer writer in one thread.
// Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runConcurrency } from './concurrency.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/concurrency.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('readers interleaved with a writer: constant total, exact snapshots, stable scans, no snapshot going backwards, no error; returned buffers never change through page reuse', async () => {
  const lines: string[] = [];
  const f = await runConcurrency({ long: false, seed, log: (l) => lines.push(l) });
  console.log(`concurrency: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.invariantViolations).toBe(0);
  expect(f.tornReads).toBe(0);
  expect(f.scanMismatches).toBe(0);
  expect(f.snapshotsBackwards).toBe(0);
  expect(f.readerErrors).toBe(0);
  expect(f.buffersChanged).toBe(0);
  expect(f.writerCommits).toBe(150);
  expect(f.readerSnapshots).toBeGreaterThan(50);
  expect(f.timeTravelSnapshots).toBeGreaterThan(0);
  expect(f.buffersKept).toBeGreaterThan(1000);
  expect(f.pagesWritten).toBeGreaterThan(f.finalPageCount);
}, 120_000);
