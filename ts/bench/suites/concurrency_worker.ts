// The worker thread of the concurrency suite (ts/bench/suites/concurrency.ts):
// one database handle of its own (`open()` in this thread, with the kernels
// NORTHSTAR_NATIVE selects for it) and the loops the suite times, answering
// calls from the runner's thread (ts/bench/threads.ts).
//
// Every loop takes one timer read per op (performance.now(), which allocates
// nothing), so an op's latency is the time since the previous op ended and
// includes the loop's few nanoseconds and the read of the STOP word;
// beginRead samples read the timer before and after (the catch-up case must
// leave the other handle's commit out).

import * as fs from 'node:fs';
import { workerData } from 'node:worker_threads';
import { open, type Database, type OpenOptions, type ReadTxn } from '../../index.js';
import { allocMeter, collectGarbage, type Allocated } from '../alloc.js';
import type { IoCounters } from '../registry.js';
import { serve, type PhaseControl, type ThreadInit } from '../threads.js';
import { dbIo, keyTable, randomIndexes, VALUE_BYTES, valueOf } from './fixtures.js';

/** Latency samples kept per call; ops past it are counted and timed in the total, not sampled. */
const SAMPLE_CAP = 1 << 21;
const PICKS = 1 << 16;

/** What a timed loop reports: its ops, its span on the shared monotonic clock, samples (ns), allocations, I/O. */
export interface LoopReport extends Allocated {
  ops: number;
  /** process.hrtime at the first op's start and the last op's end (ns; one clock for every thread). */
  startNs: number;
  endNs: number;
  samples: Float64Array;
  errors: number;
  firstError?: string;
  io: IoCounters;
  /**
   * Linux: this thread's time on a CPU and waiting for one (runnable, not
   * running) over the loop, from /proc/thread-self/schedstat; 0 elsewhere.
   * Waiting means other threads or processes held the cores.
   */
  cpuNs: number;
  runqueueNs: number;
  /** Catch-ups of this thread's handle during the loop (stats().catchUps), each inside one op. */
  catchUps: number;
}

export interface OpenReply {
  implementation: string;
  coordination: string;
  pageSize: number;
  sync: 'full' | 'none';
  /** Median cost of one timer read in this thread (ns): the floor under every sample. */
  timerNs: number;
}

let db: Database | null = null;
/** A second handle on the same file (begin_read_latency's committer). */
let peer: Database | null = null;
let keys: Buffer[] = [];
let picks: Uint32Array = new Uint32Array(0);
let cursor = 0;
const value = valueOf(VALUE_BYTES);

function handle(): Database {
  if (db === null) throw new Error('no database open in this worker');
  return db;
}

function ioDelta(a: IoCounters, b: IoCounters): IoCounters {
  const out = { ...b };
  for (const k of Object.keys(out) as (keyof IoCounters)[]) out[k] -= a[k];
  return out;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function nextKey(): Buffer {
  const k = keys[picks[cursor]!]!;
  cursor = (cursor + 1) & (PICKS - 1);
  return k;
}

/** [ns on a CPU, ns runnable but waiting for one] of this thread so far; zeros where the kernel does not say. */
function schedstat(): [number, number] {
  try {
    const [run, wait] = fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return [Number(run) || 0, Number(wait) || 0];
  } catch {
    return [0, 0];
  }
}

function timerCost(): number {
  const n = 10_001;
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = performance.now();
  const d = new Float64Array(n - 1);
  for (let i = 1; i < n; i++) d[i - 1] = (t[i]! - t[i - 1]!) * 1e6;
  d.sort();
  return d[(n - 1) >> 1]!;
}

/**
 * A sample array whose memory is already touched. A new typed array's pages
 * are mapped by the kernel on first write, one page fault per 512 samples; in
 * the loop those faults landed in the samples they were taken for (with a
 * writer running, they added about 1 µs to the readers' p99: measured
 * 4.1–4.9 against 3.1–3.5 µs in a side script).
 */
function prefaulted(n: number): Float64Array {
  const a = new Float64Array(n);
  a.fill(1);
  return a;
}

/**
 * Runs `step` until STOP (phased calls) or `max` ops, one sample per op, and
 * at least once.
 * Errors are counted, the first kept; the loop goes on.
 */
function timedLoop(phase: PhaseControl, max: number, step: (n: number) => void): LoopReport {
  const samples = prefaulted(Math.min(SAMPLE_CAP, max > 0 ? max : SAMPLE_CAP));
  const limit = max > 0 ? max : Infinity;
  collectGarbage();
  const io0 = dbIo(handle());
  const catchUps0 = handle().stats().catchUps;
  phase.start();
  const meter = allocMeter();
  const sched0 = schedstat();
  const start = process.hrtime.bigint();
  let prev = performance.now();
  let n = 0;
  let errors = 0;
  let first: unknown = undefined;
  // At least one op: a thread the scheduler starts after STOP (a loaded machine) still measures something.
  while (n < limit && (n === 0 || !phase.stopped())) {
    try {
      step(n);
    } catch (err) {
      if (errors++ === 0) first = err;
    }
    const now = performance.now();
    if (n < samples.length) samples[n] = (now - prev) * 1e6;
    prev = now;
    n++;
  }
  const end = process.hrtime.bigint();
  const sched1 = schedstat();
  const allocated = meter.stop();
  const report: LoopReport = {
    ops: n,
    cpuNs: sched1[0] - sched0[0],
    runqueueNs: sched1[1] - sched0[1],
    startNs: Number(start),
    endNs: Number(end),
    samples: n < samples.length ? samples.slice(0, n) : samples,
    errors,
    io: ioDelta(io0, dbIo(handle())),
    catchUps: handle().stats().catchUps - catchUps0,
    ...allocated,
  };
  if (errors > 0) report.firstError = message(first);
  return report;
}

const init = workerData as ThreadInit;

serve(init, {
  /** Opens this worker's handle (and, with peer, a second one with sync 'none'). */
  open(msg): OpenReply {
    const options = (msg.options ?? {}) as OpenOptions;
    db = open(String(msg.file), options);
    if (msg.peer === true) peer = open(String(msg.file), { sync: 'none' });
    const s = db.stats();
    if (s.implementation !== msg.impl) throw new Error(`worker opened a ${s.implementation} handle, wanted ${String(msg.impl)}`);
    const records = Number(msg.records);
    keys = keyTable(records);
    picks = randomIndexes(PICKS, records, Number(msg.seed));
    return { implementation: s.implementation, coordination: s.coordination, pageSize: s.pageSize, sync: s.sync, timerNs: timerCost() };
  },

  /**
   * Reads every `stride`-th key (default every key), so the handle's page
   * cache holds the whole tree: a stride below the entries of a leaf visits
   * every leaf.
   */
  warm(msg): number {
    const stride = Number(msg.stride ?? 1);
    const r = handle().beginRead();
    let n = 0;
    try {
      for (let i = 0; i < keys.length; i += stride, n++) if (r.get(keys[i]!) === undefined) throw new Error(`key ${keys[i]!.toString()} missing`);
    } finally {
      r.close();
    }
    return n;
  },

  /**
   * `readers` readers, interleaved one get at a time: each runs read
   * transactions of `gets` random point gets (beginRead, gets, close), so all
   * of them hold a transaction at any moment. First transactions are
   * staggered so their ends do not line up.
   */
  read(msg, phase): LoopReport {
    const d = handle();
    const readers = Number(msg.readers);
    const gets = Number(msg.gets);
    const txns: (ReadTxn | null)[] = new Array<ReadTxn | null>(readers).fill(null);
    const left = new Int32Array(readers);
    for (let j = 0; j < readers; j++) left[j] = 1 + (j % gets);
    let j = 0;
    try {
      return timedLoop(phase, Number(msg.ops ?? 0), () => {
        const r = j;
        if (++j === readers) j = 0;
        let t = txns[r] ?? null;
        if (t === null) {
          t = d.beginRead();
          txns[r] = t;
        }
        const v = t.get(nextKey());
        if (--left[r]! === 0) {
          left[r] = gets;
          txns[r] = null;
          t.close();
        }
        if (v === undefined || v.length !== VALUE_BYTES) throw new Error('a get returned no value or a wrong one');
      });
    } finally {
      for (const t of txns) t?.close();
    }
  },

  /** Write transactions of `puts` updates of random keys, each committed (the handle's sync mode). */
  write(msg, phase): LoopReport {
    const d = handle();
    const puts = Number(msg.puts);
    return timedLoop(phase, Number(msg.ops ?? 0), () => {
      const w = d.beginWrite();
      try {
        for (let i = 0; i < puts; i++) w.put(nextKey(), value);
        w.commit();
      } catch (err) {
        w.abort();
        throw err;
      }
    });
  },

  checkpoint(): null {
    handle().checkpoint();
    return null;
  },

  /**
   * `ops` × beginRead().close(), each timed alone. With catchUp, the peer
   * handle commits one put before each (not timed), so every beginRead
   * follows a commit another handle made.
   */
  beginRead(msg, phase): LoopReport {
    const d = handle();
    const ops = Number(msg.ops);
    const catchUp = msg.catchUp === true;
    if (catchUp && peer === null) throw new Error('catchUp needs the worker opened with peer');
    const samples = prefaulted(ops);
    collectGarbage();
    const io0 = dbIo(d);
    const catchUps0 = d.stats().catchUps;
    phase.start();
    const meter = allocMeter();
    const sched0 = schedstat();
    const start = process.hrtime.bigint();
    let errors = 0;
    let first: unknown = undefined;
    for (let n = 0; n < ops; n++) {
      if (catchUp) {
        const w = peer!.beginWrite();
        w.put(nextKey(), value);
        w.commit();
      }
      const t0 = performance.now();
      try {
        d.beginRead().close();
      } catch (err) {
        if (errors++ === 0) first = err;
      }
      samples[n] = (performance.now() - t0) * 1e6;
    }
    const end = process.hrtime.bigint();
    const sched1 = schedstat();
    const allocated = meter.stop();
    const report: LoopReport = { ops, startNs: Number(start), endNs: Number(end), samples, errors, io: ioDelta(io0, dbIo(d)), cpuNs: sched1[0] - sched0[0], runqueueNs: sched1[1] - sched0[1], catchUps: d.stats().catchUps - catchUps0, ...allocated };
    if (errors > 0) report.firstError = message(first);
    return report;
  },

  exit(): null {
    try {
      peer?.close();
    } finally {
      peer = null;
      db?.close();
      db = null;
    }
    return null;
  },
});
