// The seeded workload the hardening suites share, and its reference model.
//
// `opsFor(seed, txnId)` gives the operations of commit `txnId` of a run: the
// same txn id always gets the same operations, so a commit lost by a crash and
// made again after recovery is the same commit, and the model of a run is the
// state after txns 1..T for any T. It is plain JavaScript in a string
// (WORKLOAD_JS) so a child process written as a .mjs file runs exactly the
// code the parent's model uses.

import { StateHash } from '../log/replay.js';

/** [op, key, value]: puts and dels of string keys; values are ASCII. */
export type Op = ['put', string, string] | ['del', string];

/**
 * Keys from a space of 300 (so dels hit and pages split and merge), 1–12 ops
 * a commit, values up to ~100 bytes, and now and then a value of 1,100–9,000
 * bytes: more than a quarter of a 4 KiB page, so it goes to an overflow chain.
 */
export const WORKLOAD_JS = `
function rngOf(a) {
  a = a >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function opsFor(seed, txnId) {
  const r = rngOf(seed ^ Math.imul(txnId, 0x9e3779b9));
  const key = () => 'k' + String(Math.floor(r() * 300)).padStart(4, '0');
  const value = (i) => txnId + '/' + i + ':' + 'v'.repeat(Math.floor(r() * 100));
  const ops = [['put', key(), value(0)]];
  const n = Math.floor(r() * 12);
  for (let i = 1; i <= n; i++) {
    const x = r();
    if (x < 0.5) ops.push(['put', key(), value(i)]);
    else if (x < 0.8) ops.push(['del', key()]);
    else if (x < 0.9) { const k = key(); ops.push(['put', k, value(i)], ['del', k]); }
    else ops.push(['put', key(), txnId + '/' + i + ':' + 'B'.repeat(1100 + Math.floor(r() * 8000))]);
  }
  return ops;
}
function digestOf(ops) {
  let h = 0x811c9dc5;
  for (const op of ops) {
    const s = op.join('\\u0000') + '\\u0001';
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}
`;

const compiled = new Function(`${WORKLOAD_JS}; return { rngOf, opsFor, digestOf };`)() as {
  rngOf: (seed: number) => () => number;
  opsFor: (seed: number, txnId: number) => Op[];
  digestOf: (ops: Op[]) => number;
};

export const rngOf = compiled.rngOf;
export const opsFor = compiled.opsFor;
export const digestOf = compiled.digestOf;

/** Applies a commit's operations to a write transaction (or anything with put/del). */
export function applyOps(w: { put(k: string, v: string): void; del(k: string): unknown }, ops: Op[]): void {
  for (const op of ops) {
    if (op[0] === 'put') w.put(op[1], op[2]);
    else w.del(op[1]);
  }
}

/**
 * The reference model of a run: the state hash (ts/log/replay.ts, the same
 * hash as stateHashOf over a snapshot's scan) after every txn id, extended on
 * demand, and each commit's digest.
 */
export class Model {
  private readonly hashes: string[];
  private readonly digests: number[] = [0];
  private readonly entries = new Map<string, [number, number]>();
  private readonly h = new StateHash();

  constructor(readonly seed: number) {
    this.hashes = [this.h.toString()];
  }

  private extendTo(t: number): void {
    while (this.hashes.length <= t) {
      const txnId = this.hashes.length;
      const ops = opsFor(this.seed, txnId);
      for (const op of ops) {
        const old = this.entries.get(op[1]);
        if (old) {
          this.h.remove(old[0], old[1]);
          this.entries.delete(op[1]);
        }
        if (op[0] === 'put') {
          const e = this.h.entry(Buffer.from(op[1], 'latin1'), Buffer.from(op[2], 'latin1'));
          this.h.add(e[0], e[1]);
          this.entries.set(op[1], e);
        }
      }
      this.hashes.push(this.h.toString());
      this.digests.push(digestOf(ops));
    }
  }

  /** State hash after txn t (0: the empty database). */
  hash(t: number): string {
    this.extendTo(t);
    return this.hashes[t]!;
  }

  digest(t: number): number {
    this.extendTo(t);
    return this.digests[t]!;
  }
}

/** p-th percentile (0–100) of xs, nearest rank; 0 for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
