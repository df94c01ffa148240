// micro/kernels: every kernel of ts/native/kernels.ts, measured in both
// implementations in one process. Fixtures are built once with the fallback, so both contenders
// get identical bytes. Each contender runs its own copy of the benchmark code
// (recompiled from source with new Function), so V8's call-site feedback never
// mixes the two implementations. Kernels that need a fresh input every call
// (split, merge, compact) restore it with TypedArray.set inside the op; that
// copy costs both implementations the same, so ratios stay honest (if lower).
//
// Factories must be self-contained (no references to module scope): they are
// recompiled from their source text.

import { FORMAT_VERSION } from '../../format/constants.js';
import { RecordBuilder } from '../../log/record.js';
import { fallbackKernels, type Kernels } from '../../native/kernels.js';
import type { Benchmark, BenchCase } from '../registry.js';

const PAGE = 16384;
const LEAF = 3;
const BRANCH = 2;

export interface KernelFixtures {
  sealed: Uint8Array;
  fullLeaf: Uint8Array;
  fullBranch: Uint8Array;
  roomyLeaf: Uint8Array;
  roomyBranch: Uint8Array;
  fragLeaf: Uint8Array;
  leftHalf: Uint8Array;
  rightHalf: Uint8Array;
  emptyLeaf: Uint8Array;
  probes: Uint8Array[];
  branchProbes: Uint8Array[];
  extraKey: Uint8Array;
  extraAt: number;
  extraBranchAt: number;
  value: Uint8Array;
  inLeaf: number;
  inBranch: number;
  bigRecord: Uint8Array;
  smallLog: Uint8Array;
  smallOffsets: Uint32Array;
  /** A cartridge entry table (spec/cartridge_v1.md §2) of 100k entries in claim order. */
  cartridgeEntries: Uint8Array;
}

/** (kernels, fixtures, RecordBuilder) → a zero-argument op returning something to keep. */
export type KernelFactory = (k: Kernels, f: KernelFixtures, rb: typeof RecordBuilder) => () => unknown;

export interface KernelBench {
  name: string;
  /** The Kernels functions it exercises (the gate checks every one is covered). */
  kernels: (keyof Kernels)[];
  params: Record<string, string | number>;
  /** The gate's extra floor: native must be at least this many times faster. */
  minRatio?: number;
  factory: KernelFactory;
}

function emptyNode(type: number, size = PAGE): Uint8Array {
  const p = new Uint8Array(size);
  p[6] = type;
  new DataView(p.buffer).setUint32(44, size, true);
  return p;
}

/** Random 16-byte keys, sorted (unsigned bytewise) and distinct. */
/**
 * n distinct sorted 16-byte keys of the storage workload (issue 2 §8, and the
 * btree suite): random record numbers below 1M, zero-padded decimal. Keys of a
 * real database share prefixes; random bytes would end every comparison at the
 * first byte and measure only call overhead.
 */
function sortedKeys(n: number, seed: number): Uint8Array[] {
  let x = seed;
  const seen = new Set<number>();
  while (seen.size < n) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    seen.add((x >>> 0) % 1_000_000);
  }
  return [...seen].sort((a, b) => a - b).map((i) => new Uint8Array(Buffer.from(String(i).padStart(16, '0'))));
}

let cached: KernelFixtures | null = null;

export function kernelFixtures(): KernelFixtures {
  if (cached) return cached;
  const fb = fallbackKernels;
  const value = new Uint8Array(128).fill(0x5a);
  const leafKeys = sortedKeys(2000, 0x1234567);
  const fullLeaf = emptyNode(LEAF);
  const inLeaf: Uint8Array[] = [];
  for (const k of leafKeys) {
    if (!fb.leafInsert(fullLeaf, inLeaf.length, k, value, value.length)) break;
    inLeaf.push(k);
  }
  const branchKeys = sortedKeys(2000, 0x7654321);
  const fullBranch = emptyNode(BRANCH);
  let inBranch = 0;
  for (const k of branchKeys) {
    if (!fb.branchInsert(fullBranch, inBranch, k, 1000 + inBranch, 7)) break;
    inBranch++;
  }
  const roomyLeaf = emptyNode(LEAF);
  for (let i = 0; i < inLeaf.length - 1; i++) fb.leafInsert(roomyLeaf, i, inLeaf[i]!, value, value.length);
  const roomyBranch = emptyNode(BRANCH);
  for (let i = 0; i < inBranch - 1; i++) fb.branchInsert(roomyBranch, i, branchKeys[i]!, 1000 + i, 7);
  const extraKey = new Uint8Array(16).fill(0x80);
  const extraAt = fb.leafSearch(roomyLeaf, extraKey) >>> 1;
  const extraBranchAt = Math.max(0, fb.branchSearch(roomyBranch, extraKey));
  const fragLeaf = fullLeaf.slice();
  for (let i = inLeaf.length - 2; i >= 0; i -= 2) fb.nodeRemove(fragLeaf, i);
  const leftHalf = fullLeaf.slice();
  const rightHalf = emptyNode(LEAF);
  fb.nodeSplit(leftHalf, rightHalf, inLeaf.length >>> 1);
  const probes = Array.from({ length: 4096 }, (_, i) => inLeaf[(i * 7919) % inLeaf.length]!.slice());
  const branchProbes = Array.from({ length: 4096 }, (_, i) => branchKeys[(i * 7919) % branchKeys.length]!.slice());
  const sealed = fullLeaf.slice();
  const dv = new DataView(sealed.buffer);
  dv.setUint32(0, 0x4e534442, true);
  dv.setUint16(4, FORMAT_VERSION, true);
  dv.setUint32(8, 77, true);
  dv.setUint32(24, PAGE - 40, true);
  fb.pageSeal(sealed);
  if (fb.pageVerify(sealed, 77) !== 0) throw new Error('kernel fixture: sealed page does not verify');

  // Commit records: one of 16 puts of 64 KiB values (~1 MiB), and 4096 small ones back to back.
  const b = new RecordBuilder();
  b.reset(7);
  const big = new Uint8Array(65536).map((_, i) => (i * 31) & 0xff);
  for (let i = 0; i < 16; i++) b.put(new Uint8Array([i + 1, 2, 3, 4]), big);
  const bigRecord = b.seal(0, 3, fb).slice();
  const key = new Uint8Array(16).map((_, i) => i * 13 + 1);
  const v100 = new Uint8Array(100).map((_, i) => i * 7 + 3);
  const parts: Uint8Array[] = [];
  const smallOffsets = new Uint32Array(4096);
  let pos = 0;
  for (let i = 0; i < 4096; i++) {
    b.reset(i + 1);
    b.put(key, v100);
    const rec = b.seal(pos, 1000 + i, fb).slice();
    smallOffsets[i] = pos;
    parts.push(rec);
    pos += rec.length;
  }
  const smallLog = new Uint8Array(pos);
  for (let i = 0; i < parts.length; i++) smallLog.set(parts[i]!, smallOffsets[i]!);

  // 100k cartridge entries in claim order: rank, reserved 0, readyAt (~2^40, a ms timestamp), id.
  const cartridgeEntries = new Uint8Array(100_000 * 24);
  const ce = new DataView(cartridgeEntries.buffer);
  for (let i = 0; i < 100_000; i++) {
    ce.setUint32(i * 24, i >>> 12, true);
    ce.setBigUint64(i * 24 + 8, 1_700_000_000_000n + BigInt((i & 0xfff) * 1000), true);
    ce.setBigUint64(i * 24 + 16, BigInt(i + 1), true);
  }
  if (fb.cartridgeDisorder(cartridgeEntries, 0, 100_000) !== 0) throw new Error('kernel fixture: cartridge entries out of order');
  cached = {
    sealed, fullLeaf, fullBranch, roomyLeaf, roomyBranch, fragLeaf, leftHalf, rightHalf, emptyLeaf: emptyNode(LEAF),
    probes, branchProbes, extraKey, extraAt, extraBranchAt, value, inLeaf: inLeaf.length, inBranch, bigRecord, smallLog, smallOffsets, cartridgeEntries,
  };
  return cached;
}

/* eslint-disable */
export const KERNEL_BENCHES: KernelBench[] = [
  { name: 'crc32c_16k', kernels: ['crc32c'], params: { bytes: 16384 }, minRatio: 10,
    factory: (k, f) => { const p = f.sealed.slice(); let s = 0; return () => { s ^= k.crc32c(p); return s; }; } },
  { name: 'page_seal_16k', kernels: ['pageSeal'], params: { bytes: 16384 },
    factory: (k, f) => { const p = f.sealed.slice(); return () => k.pageSeal(p); } },
  { name: 'page_verify_16k', kernels: ['pageVerify'], params: { bytes: 16384 },
    factory: (k, f) => { const p = f.sealed.slice(); let s = 0; return () => { s += k.pageVerify(p, 77); return s; }; } },
  { name: 'leaf_search', kernels: ['leafSearch'], params: { cells: 'full 16 KiB leaf', key_bytes: 16, value_bytes: 128 },
    factory: (k, f) => { const p = f.fullLeaf.slice(); const probes = f.probes; let i = 0; let s = 0; return () => { s += k.leafSearch(p, probes[i++ & 4095]!); return s; }; } },
  { name: 'branch_search', kernels: ['branchSearch'], params: { cells: 'full 16 KiB branch', key_bytes: 16 },
    factory: (k, f) => { const p = f.fullBranch.slice(); const probes = f.branchProbes; let i = 0; let s = 0; return () => { s += k.branchSearch(p, probes[i++ & 4095]!); return s; }; } },
  { name: 'leaf_insert_remove', kernels: ['leafInsert', 'nodeRemove'], params: { op: 'leafInsert + nodeRemove, nearly full leaf' },
    factory: (k, f) => { const p = f.roomyLeaf.slice(); const key = f.extraKey; const v = f.value; const at = f.extraAt;
      return () => { if (!k.leafInsert(p, at, key, v, v.length)) throw new Error('no room'); k.nodeRemove(p, at); }; } },
  { name: 'branch_insert_remove', kernels: ['branchInsert', 'nodeRemove'], params: { op: 'branchInsert + nodeRemove, nearly full branch' },
    factory: (k, f) => { const p = f.roomyBranch.slice(); const key = f.extraKey; const at = f.extraBranchAt;
      return () => { if (!k.branchInsert(p, at, key, 4242, 7)) throw new Error('no room'); k.nodeRemove(p, at); }; } },
  { name: 'node_split', kernels: ['nodeSplit'], params: { op: 'split a full leaf in half', includes: 'restoring 2 x 16 KiB inputs' },
    factory: (k, f) => { const src = new Uint8Array(f.fullLeaf.length); const dst = new Uint8Array(src.length); const full = f.fullLeaf; const empty = f.emptyLeaf; const at = f.inLeaf >>> 1;
      return () => { src.set(full); dst.set(empty); if (!k.nodeSplit(src, dst, at)) throw new Error('split failed'); }; } },
  { name: 'node_merge', kernels: ['nodeMerge'], params: { op: 'merge two half leaves', includes: 'restoring 16 KiB input' },
    factory: (k, f) => { const dst = new Uint8Array(f.leftHalf.length); const left = f.leftHalf; const right = f.rightHalf;
      return () => { dst.set(left); if (!k.nodeMerge(dst, right)) throw new Error('merge failed'); }; } },
  { name: 'node_decode', kernels: ['nodeDecode'], params: { op: 'decode every cell of a full leaf' },
    factory: (k, f) => { const p = f.fullLeaf.slice(); const out = new Uint32Array(4 * f.inLeaf); let s = 0; return () => { s += k.nodeDecode(p, out); return s; }; } },
  { name: 'node_compact', kernels: ['nodeCompact'], params: { op: 'compact a half-dead leaf', includes: 'restoring 16 KiB input' },
    factory: (k, f) => { const p = new Uint8Array(f.fragLeaf.length); const frag = f.fragLeaf; return () => { p.set(frag); k.nodeCompact(p); }; } },
  { name: 'record_seal_1mib', kernels: ['recordSeal'], params: { bytes: '1 MiB', puts: 16 },
    factory: (k, f) => { const r = f.bigRecord.slice(); return () => k.recordSeal(r, 0); } },
  { name: 'record_verify_1mib', kernels: ['recordVerify'], params: { bytes: '1 MiB', puts: 16 },
    factory: (k, f) => { const r = f.bigRecord.slice(); return () => k.recordVerify(r, 0); } },
  { name: 'record_decode_1mib', kernels: ['recordDecode'], params: { bytes: '1 MiB', puts: 16 },
    factory: (k, f) => { const r = f.bigRecord.slice(); const out = new Uint32Array(64); return () => k.recordDecode(r, 0, out); } },
  { name: 'record_verify_decode_small', kernels: ['recordVerify', 'recordDecode'], params: { record_bytes: 204, puts: 1, op: 'verify + decode one record (replay)' },
    factory: (k, f) => { const log = f.smallLog; const offs = f.smallOffsets; const out = new Uint32Array(4); let i = 0; let s = 0;
      return () => { const at = offs[i++ & 4095]!; if (k.recordVerify(log, at) <= 0) throw new Error('bad record'); s += k.recordDecode(log, at, out); return s; }; } },
  { name: 'record_build_seal_small', kernels: ['recordSeal'], params: { op: 'RecordBuilder reset + 1 put + seal', key_bytes: 16, value_bytes: 100 },
    factory: (k, f, RB) => { const b = new RB(); const key = f.probes[0]!; const value = f.value.subarray(0, 100); let txn = 1; let s = 0;
      return () => { b.reset(txn++); b.put(key, value); s += b.seal(txn, 5, k).length; return s; }; } },
  { name: 'cartridge_disorder_100k', kernels: ['cartridgeDisorder'], params: { entries: '100k in claim order', bytes: '2.4 MB', op: 'entry-order check of a cartridge load' },
    factory: (k, f) => { const b = f.cartridgeEntries; const n = b.length / 24; let s = 0; return () => { s += k.cartridgeDisorder(b, 0, n); return s; }; } },
];
/* eslint-enable */

/** A fresh copy of `factory`'s code, so each implementation has its own type feedback. */
export function freshFactory(factory: KernelFactory): KernelFactory {
  return new Function(`return (${factory.toString()});`)() as KernelFactory;
}

export function kernelBenchmarks(): Benchmark[] {
  return KERNEL_BENCHES.map((kb) => ({
    suite: 'micro',
    group: 'kernels',
    name: kb.name,
    critical: kb.minRatio !== undefined,
    kind: 'kernel',
    params: () => ({ ...kb.params, kernels: kb.kernels.join('+'), ...(kb.minRatio ? { gate: `native >= ${kb.minRatio}x fallback` } : { gate: 'native > fallback' }) }),
    setup(ctx): BenchCase {
      const op = freshFactory(kb.factory)(ctx.kernels, kernelFixtures(), RecordBuilder);
      return { ops: 'auto', batch: 0, warmupOps: 2000, op: op as (i: number) => void, notes: ['ops calibrated to ~100 ms per repeat; latency per op from timed batches'] };
    },
  }));
}
