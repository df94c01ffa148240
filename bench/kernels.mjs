// Page and node kernels, native addon against the TypeScript fallback, side by
// side in one process (alternating rounds, so machine noise hits both alike).
// Run after `npm run build`:  node bench/kernels.mjs [--rounds 15]
//
// A hand loop over process.hrtime.bigint (benny reports ops/s and margins, not
// medians): each round runs a calibrated number of calls (~40 ms); the table
// shows the median ns/op over the rounds and fallback ÷ native (> 1: native is
// faster). Each contender gets its own copy of the benchmark code (rebuilt
// from source), so V8's call-site feedback never mixes the two implementations.
// Kernels that need a fresh input every call (nodeSplit, nodeCompact) restore
// it with TypedArray.prototype.set; that copy is timed separately and
// subtracted, and the raw time including it is shown too.

import { fallbackKernels, nativeKernels, nativeUnavailableReason } from '../dist/native/kernels.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('rounds', 15);
const TARGET_NS = 40_000_000n;
const PAGE = 16384;
const LEAF = 3;
const BRANCH = 2;

// ---- fixtures (built once with the fallback, identical for both) ---------------

function emptyNode(type, size = PAGE) {
  const p = new Uint8Array(size);
  p[6] = type;
  new DataView(p.buffer).setUint32(44, size, true);
  return p;
}

/** Random 16-byte keys, sorted (unsigned bytewise) and distinct. */
function sortedKeys(n, seed) {
  let x = seed;
  const keys = [];
  for (let i = 0; i < n; i++) {
    const k = new Uint8Array(16);
    for (let j = 0; j < 16; j++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      k[j] = x & 0xff;
    }
    keys.push(k);
  }
  return keys.sort((a, b) => Buffer.compare(a, b));
}

const value = new Uint8Array(128).fill(0x5a);
const fb = fallbackKernels;

// Full 16 KiB leaf: 16-byte keys, 128-byte values (152 bytes with the slot each).
const leafKeys = sortedKeys(2000, 0x1234567);
const fullLeaf = emptyNode(LEAF);
const inLeaf = [];
for (const k of leafKeys) {
  if (!fb.leafInsert(fullLeaf, inLeaf.length, k, value, value.length)) break;
  inLeaf.push(k);
}
// Full branch: 16-byte separators (28 bytes with the slot each).
const branchKeys = sortedKeys(2000, 0x7654321);
const fullBranch = emptyNode(BRANCH);
let inBranch = 0;
for (const k of branchKeys) {
  if (!fb.branchInsert(fullBranch, inBranch, k, 1000 + inBranch)) break;
  inBranch++;
}
// A leaf with room for one more cell (for insert + remove).
const roomyLeaf = emptyNode(LEAF);
for (let i = 0; i < inLeaf.length - 1; i++) fb.leafInsert(roomyLeaf, i, inLeaf[i], value, value.length);
const extraKey = new Uint8Array(16).fill(0x80);
const extraAt = fb.leafSearch(roomyLeaf, extraKey) >>> 1;
// A fragmented leaf: every other cell removed (dead bytes, not at cellStart).
const fragLeaf = fullLeaf.slice();
for (let i = inLeaf.length - 2; i >= 0; i -= 2) fb.nodeRemove(fragLeaf, i);
// Random present keys for the searches (copies: not views into the page).
const probes = Array.from({ length: 4096 }, (_, i) => inLeaf[(i * 7919) % inLeaf.length].slice());
const branchProbes = Array.from({ length: 4096 }, (_, i) => branchKeys[(i * 7919) % branchKeys.length].slice());
const sealed = fullLeaf.slice();
new DataView(sealed.buffer).setUint32(0, 0x4e534442, true);
new DataView(sealed.buffer).setUint32(8, 77, true);
new DataView(sealed.buffer).setUint32(24, PAGE - 40, true);
fb.pageSeal(sealed);
if (fb.pageVerify(sealed, 77) !== 0) throw new Error('fixture: sealed page does not verify');

// ---- benchmarks: factories returning a zero-argument op; `k` is the kernel set ---

const BENCHES = [
  ['crc32c 16 KiB', (k, f) => { const p = f.sealed.slice(); let s = 0; return () => { s ^= k.crc32c(p); return s; }; }],
  ['pageSeal 16 KiB', (k, f) => { const p = f.sealed.slice(); return () => k.pageSeal(p); }],
  ['pageVerify 16 KiB', (k, f) => { const p = f.sealed.slice(); let s = 0; return () => { s += k.pageVerify(p, 77); return s; }; }],
  [`leafSearch (${inLeaf.length} cells)`, (k, f) => {
    const p = f.fullLeaf.slice(); const probes = f.probes; let i = 0; let s = 0;
    return () => { s += k.leafSearch(p, probes[i++ & 4095]); return s; };
  }],
  [`branchSearch (${inBranch} cells)`, (k, f) => {
    const p = f.fullBranch.slice(); const probes = f.branchProbes; let i = 0; let s = 0;
    return () => { s += k.branchSearch(p, probes[i++ & 4095]); return s; };
  }],
  ['leafInsert + nodeRemove', (k, f) => {
    const p = f.roomyLeaf.slice(); const key = f.extraKey; const v = f.value; const at = f.extraAt;
    return () => { if (!k.leafInsert(p, at, key, v, v.length)) throw new Error('no room'); k.nodeRemove(p, at); };
  }],
  ['nodeSplit full leaf *', (k, f) => {
    const src = new Uint8Array(f.fullLeaf.length); const dst = new Uint8Array(src.length);
    const full = f.fullLeaf; const empty = f.emptyLeaf; const at = f.inLeaf >>> 1;
    return () => { src.set(full); dst.set(empty); if (!k.nodeSplit(src, dst, at)) throw new Error('split failed'); };
  }],
  ['nodeDecode full leaf', (k, f) => {
    const p = f.fullLeaf.slice(); const out = new Uint32Array(4 * f.inLeaf); let s = 0;
    return () => { s += k.nodeDecode(p, out); return s; };
  }],
  ['nodeCompact fragmented leaf *', (k, f) => {
    const p = new Uint8Array(f.fragLeaf.length); const frag = f.fragLeaf;
    return () => { p.set(frag); k.nodeCompact(p); };
  }],
];

// The restore cost of the starred rows, timed the same way and subtracted.
const BASELINES = {
  'nodeSplit full leaf *': (_k, f) => {
    const src = new Uint8Array(f.fullLeaf.length); const dst = new Uint8Array(src.length);
    const full = f.fullLeaf; const empty = f.emptyLeaf;
    return () => { src.set(full); dst.set(empty); };
  },
  'nodeCompact fragmented leaf *': (_k, f) => {
    const p = new Uint8Array(f.fragLeaf.length); const frag = f.fragLeaf;
    return () => { p.set(frag); };
  },
};

const fixtures = {
  sealed, fullLeaf, fullBranch, roomyLeaf, fragLeaf, probes, branchProbes, extraKey, extraAt, value,
  emptyLeaf: emptyNode(LEAF), inLeaf: inLeaf.length,
};

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

function measure(contenders) {
  const ops = contenders.map(([, op]) => op);
  const calls = ops.map(calibrate);
  const samples = ops.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order each round.
    const order = r % 2 === 0 ? ops.keys() : [...ops.keys()].reverse();
    for (const j of order) samples[j].push(round(ops[j], calls[j]));
  }
  return samples.map(median);
}

const impls = [['fallback', fallbackKernels]];
if (nativeKernels) impls.push(['native', nativeKernels]);
else console.log(`native kernels not loaded (${nativeUnavailableReason}); measuring the fallback only`);

console.log(`page and node kernels, ${PAGE}-byte pages, median of ${ROUNDS} rounds, node ${process.version}`);
console.log('* = includes restoring the 16 KiB input each call; the copy is measured and subtracted, raw in brackets\n');
const header = `${'kernel'.padEnd(32)}${'native ns/op'.padStart(22)}${'fallback ns/op'.padStart(24)}${'fallback/native'.padStart(17)}`;
console.log(header);
console.log('-'.repeat(header.length));
const rows = [];
for (const [name, factory] of BENCHES) {
  const contenders = impls.map(([impl, k]) => [impl, fresh(factory)(k, fixtures)]);
  const base = BASELINES[name];
  if (base) contenders.push(...impls.map(([impl, k]) => [`${impl}-copy`, fresh(base)(k, fixtures)]));
  const m = measure(contenders);
  const byName = new Map(contenders.map(([n], i) => [n, m[i]]));
  const net = (impl) => (base ? Math.max(0, byName.get(impl) - byName.get(`${impl}-copy`)) : byName.get(impl));
  const cell = (impl) => {
    if (!byName.has(impl)) return '—';
    return base ? `${net(impl).toFixed(0)} [${byName.get(impl).toFixed(0)}]` : net(impl).toFixed(net(impl) < 100 ? 1 : 0);
  };
  const ratio = byName.has('native') ? net('fallback') / net('native') : NaN;
  rows.push({ name, native: byName.has('native') ? net('native') : null, fallback: net('fallback'), ratio });
  console.log(`${name.padEnd(32)}${cell('native').padStart(22)}${cell('fallback').padStart(24)}${(Number.isNaN(ratio) ? '—' : `${ratio.toFixed(2)}x`).padStart(17)}`);
}
const slower = rows.filter((r) => r.ratio <= 1);
if (slower.length > 0) console.log(`\nnative NOT faster than fallback: ${slower.map((r) => r.name).join(', ')}`);
