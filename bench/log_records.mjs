// Commit-log record kernels (spec/commit_record_v0.md), native addon against
// the TypeScript fallback, side by side in one process (alternating rounds, so
// machine noise hits both alike). Run after `npm run build`:
//   node bench/log_records.mjs [--rounds 9] [--records 1000000]
//
// Rows:
// - build + seal: RecordBuilder.reset, one put (16-byte key, 100-byte value),
//   seal: the per-commit cost of producing a record. Target ≥ 1M records/s native.
// - verify + decode: recordVerify then recordDecode of every record of a
//   buffer holding --records such records back to back (what replay does),
//   one whole pass per sample. Target: 1M records in < 1 s native.
// - verify only: the same pass without recordDecode.
// - seal / verify 1 MiB: one commit of 16 puts of 64 KiB values.
// Each contender gets its own copy of the benchmark code (rebuilt from
// source), so V8's call-site feedback never mixes the two implementations.

import { fallbackKernels, nativeKernels, nativeUnavailableReason } from '../dist/native/kernels.js';
import { RecordBuilder } from '../dist/log/record.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('rounds', 9);
const RECORDS = arg('records', 1_000_000);
const TARGET_NS = 40_000_000n;

// ---- fixtures (built once with the fallback, identical for both) ------------------

const key = new Uint8Array(16).map((_, i) => i * 13 + 1);
const value = new Uint8Array(100).map((_, i) => i * 7 + 3);

/** RECORDS small commit records back to back, chained through prevPosition. */
function smallLog(n) {
  const b = new RecordBuilder();
  b.reset(1);
  b.put(key, value);
  const size = b.seal(0, 0, fallbackKernels).length;
  const log = new Uint8Array(size * n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    b.reset(i + 1);
    b.put(key, value);
    log.set(b.seal(prev, 1000 + i, fallbackKernels), i * size);
    prev = i * size;
  }
  return { log, size };
}

function bigRecord() {
  const b = new RecordBuilder();
  b.reset(7);
  const v = new Uint8Array(65536).map((_, i) => (i * 31) & 0xff);
  for (let i = 0; i < 16; i++) b.put(new Uint8Array([i + 1, 2, 3, 4]), v);
  return b.seal(0, 3, fallbackKernels).slice();
}

const { log, size: smallSize } = smallLog(RECORDS);
const big = bigRecord();
if (fallbackKernels.recordVerify(big, 0) !== big.length) throw new Error('fixture: big record does not verify');

// ---- benchmarks: factories returning a zero-argument op; `k` is the kernel set ------

const BENCHES = [
  {
    name: 'build + seal, 1 put 16 B / 100 B',
    unit: 'records/s',
    per: 1,
    factory: (k, f, RecordBuilder) => {
      const b = new RecordBuilder();
      const key = f.key;
      const value = f.value;
      let txn = 1;
      let s = 0;
      return () => {
        b.reset(txn++);
        b.put(key, value);
        s += b.seal(txn, 5, k).length;
        return s;
      };
    },
  },
  {
    name: `verify + decode, ${RECORDS} records`,
    unit: 'pass',
    per: RECORDS,
    whole: true,
    factory: (k, f) => {
      const log = f.log;
      const out = new Uint32Array(4);
      return () => {
        let pos = 0;
        let ops = 0;
        while (pos < log.length) {
          const n = k.recordVerify(log, pos);
          if (n <= 0) throw new Error(`record at ${pos}: status ${n}`);
          ops += k.recordDecode(log, pos, out);
          pos += n;
        }
        return ops;
      };
    },
  },
  {
    name: `verify only, ${RECORDS} records`,
    unit: 'pass',
    per: RECORDS,
    whole: true,
    factory: (k, f) => {
      const log = f.log;
      return () => {
        let pos = 0;
        while (pos < log.length) {
          const n = k.recordVerify(log, pos);
          if (n <= 0) throw new Error(`record at ${pos}: status ${n}`);
          pos += n;
        }
        return pos;
      };
    },
  },
  {
    name: `recordSeal, ${(big.length / 2 ** 20).toFixed(2)} MiB record`,
    unit: 'GB/s',
    bytes: big.length,
    factory: (k, f) => {
      const r = f.big.slice();
      return () => k.recordSeal(r, 0);
    },
  },
  {
    name: `recordVerify, ${(big.length / 2 ** 20).toFixed(2)} MiB record`,
    unit: 'GB/s',
    bytes: big.length,
    factory: (k, f) => {
      const r = f.big.slice();
      return () => k.recordVerify(r, 0);
    },
  },
  {
    name: `recordDecode, ${(big.length / 2 ** 20).toFixed(2)} MiB record`,
    unit: 'GB/s',
    bytes: big.length,
    factory: (k, f) => {
      const r = f.big.slice();
      const out = new Uint32Array(64);
      return () => k.recordDecode(r, 0, out);
    },
  },
];

const fixtures = { key, value, log, big };

/** A fresh copy of `factory`'s code, so each contender has its own type feedback. */
const fresh = (factory) => new Function(`return (${factory.toString()});`)();

function calibrate(op) {
  for (let calls = 1; ; calls *= 2) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) op();
    if (process.hrtime.bigint() - t0 > TARGET_NS / 8n) return calls * 8;
  }
}

function round(op, calls) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) op();
  return Number(process.hrtime.bigint() - t0) / calls;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Median ns per call of each op; `whole` ops run once per sample (they are long). */
function measure(ops, whole) {
  const calls = ops.map((op) => (whole ? (op(), 1) : calibrate(op)));
  const samples = ops.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [...ops.keys()] : [...ops.keys()].reverse();
    for (const j of order) samples[j].push(round(ops[j], calls[j]));
  }
  return samples.map(median);
}

const impls = [['fallback', fallbackKernels]];
if (nativeKernels) impls.unshift(['native', nativeKernels]);
else console.log(`native kernels not loaded (${nativeUnavailableReason}); measuring the fallback only`);

console.log(`commit-log record kernels, median of ${ROUNDS} rounds, node ${process.version}`);
console.log(`small record: 1 put, 16-byte key, 100-byte value = ${smallSize} bytes; log of ${RECORDS} = ${(log.length / 2 ** 20).toFixed(0)} MiB\n`);

const fmt = (bench, ns) => {
  if (bench.unit === 'records/s') return `${(1e9 / ns / 1e6).toFixed(2)} M rec/s`;
  if (bench.unit === 'pass') return `${(ns / 1e6).toFixed(0)} ms (${(bench.per / (ns / 1e9) / 1e6).toFixed(2)} M rec/s)`;
  return `${(bench.bytes / ns).toFixed(2)} GB/s`;
};
const header = `${'benchmark'.padEnd(36)}${'native'.padStart(28)}${'fallback'.padStart(28)}${'fallback/native'.padStart(17)}`;
console.log(header);
console.log('-'.repeat(header.length));
const slower = [];
for (const bench of BENCHES) {
  const ops = impls.map(([, k]) => fresh(bench.factory)(k, fixtures, RecordBuilder));
  const m = measure(ops, bench.whole === true);
  const by = new Map(impls.map(([name], i) => [name, m[i]]));
  const ratio = by.has('native') ? by.get('fallback') / by.get('native') : NaN;
  if (ratio <= 1) slower.push(bench.name);
  console.log(
    `${bench.name.padEnd(36)}${(by.has('native') ? fmt(bench, by.get('native')) : '—').padStart(28)}${fmt(bench, by.get('fallback')).padStart(28)}${(Number.isNaN(ratio) ? '—' : `${ratio.toFixed(2)}x`).padStart(17)}`,
  );
}
if (slower.length > 0) console.log(`\nnative NOT faster than fallback: ${slower.join(', ')}`);
