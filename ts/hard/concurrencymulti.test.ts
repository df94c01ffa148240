// The bounded multi-thread, multi-process concurrency torture
// (ts/hard/concurrencymulti.ts) on every `npm test`: readers in worker threads
// and a child process while two writer processes commit bank transfers.
// Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { runConcurrencyMulti } from './concurrencymulti.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/concurrencymulti.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('readers in threads and a process, writers in two others: constant total, exact snapshots, stable scans, no snapshot going backwards, no error; returned buffers never change', async () => {
  const lines: string[] = [];
  const f = await runConcurrencyMulti({ long: false, seed, log: (l) => lines.push(l) });
  console.log(`concurrencymulti: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.invariantViolations).toBe(0);
  expect(f.tornReads).toBe(0);
  expect(f.scanMismatches).toBe(0);
  expect(f.snapshotsBackwards).toBe(0);
  expect(f.readerErrors).toBe(0);
  expect(f.writerErrors).toBe(0);
  expect(f.buffersChanged).toBe(0);
  expect(f.writerCommits).toBe(195);
  expect(f.snapshotsInThreads).toBeGreaterThan(20);
  expect(f.snapshotsInProcesses).toBeGreaterThan(10);
  expect(f.buffersKept).toBeGreaterThan(1000);
  expect(f.pagesWritten).toBeGreaterThan(f.finalPageCount);
}, 180_000);
