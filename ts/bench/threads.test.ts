// The synchronous worker-thread calls of the harness, through the concurrency
// suite's worker script (the built one in dist/): replies, errors thrown back
// to the caller, a phase whose call fails, and exit.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureBuilt } from '../testing/build.js';
import { buildDatabase } from './suites/fixtures.js';
import { ThreadGroup, workerScript } from './threads.js';
import type { LoopReport, OpenReply } from './suites/concurrency_worker.js';
import { implementation } from '../native/kernels.js';

describe('worker threads called synchronously', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-threads-'));
  const file = path.join(dir, 't.ndb');
  let group: ThreadGroup;
  beforeAll(async () => {
    await ensureBuilt();
    buildDatabase(file, { records: 500, valueSize: 128, txn: 500 });
    group = new ThreadGroup(workerScript(import.meta.url, 'suites/concurrency_worker.js'), { ...process.env, NORTHSTAR_NATIVE: implementation === 'native' ? '1' : '0' });
  }, 120_000);
  afterAll(() => {
    group?.exitAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers calls, throws a handler error back with its message, and goes on answering', () => {
    const [a, b] = [group.spawn(null), group.spawn(null)];
    expect(() => a!.call({ op: 'read', readers: 1, gets: 1, ops: 1 })).toThrow(/no database open in this worker/);
    expect(() => a!.call({ op: 'nosuch' })).toThrow(/no handler for 'nosuch'/);
    const opened = [a!, b!].map((t, i) => t.call<OpenReply>({ op: 'open', file, impl: implementation, records: 500, seed: i + 1 }));
    expect(opened.map((o) => o.implementation)).toEqual([implementation, implementation]);
    expect(a!.call<number>({ op: 'warm' })).toBe(500);
  });

  it('a phase starts its threads together; one failing call fails the phase once all have answered, and the next phase works', () => {
    const [a, b] = group.threads;
    expect(() => group.run([[a!, { op: 'read', readers: 2, gets: 4 }], [b!, { op: 'nosuch' }]], 20)).toThrow(/no handler for 'nosuch'/);
    // Without a duration each call ends by its own count.
    const [ra, rb] = group.run<LoopReport>([[a!, { op: 'read', readers: 2, gets: 4, ops: 2000 }], [b!, { op: 'read', readers: 3, gets: 4, ops: 50 }]]);
    expect(ra!.ops).toBe(2000);
    expect(rb!.ops).toBe(50);
    expect(ra!.samples).toHaveLength(ra!.ops);
    expect(ra!.errors + rb!.errors).toBe(0);
    // A timed phase stops every call on STOP; both ran on one clock, so their spans overlap.
    const [ta, tb] = group.run<LoopReport>([[a!, { op: 'read', readers: 2, gets: 4 }], [b!, { op: 'read', readers: 3, gets: 4 }]], 50);
    expect(ta!.ops).toBeGreaterThan(0);
    expect(tb!.ops).toBeGreaterThan(0);
    expect(Math.max(ta!.startNs, tb!.startNs)).toBeLessThan(Math.min(ta!.endNs, tb!.endNs));
  });

  it('exit closes the handle and ends the thread; a call after it fails instead of hanging', () => {
    const t = group.threads[1]!;
    t.exit();
    expect(() => t.call({ op: 'warm' }, 2000)).toThrow(/asked to exit/);
  });
});
