// CRC-32C of a 16 KiB buffer, native addon against the TypeScript fallback,
// side by side in one process so machine noise hits both alike.
// Run after `npm run build`:  node bench/crc32c.mjs
// Prints the median ns/op of each over several alternating rounds, and the ratio.

import { crc32c as fallbackCrc32c } from '../dist/native/crc32c.js';
import { loadNativeBinding, nativeLoadError } from '../dist/native/loader.js';

const SIZE = 16 * 1024;
const ROUNDS = 15;
const TARGET_NS_PER_ROUND = 100_000_000n;

const buffer = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i++) buffer[i] = (i * 131 + 7) & 0xff;

const native = loadNativeBinding();
const contenders = [['fallback', fallbackCrc32c]];
if (native) contenders.push(['native', native.crc32c]);
else console.log(`native addon not loaded (${nativeLoadError}); measuring the fallback only`);

const expected = fallbackCrc32c(buffer);
let sink = 0;

/** Calls per round so that one round of `fn` takes about TARGET_NS_PER_ROUND. */
function calibrate(fn) {
  let calls = 1;
  for (;;) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) sink ^= fn(buffer);
    if (process.hrtime.bigint() - start > TARGET_NS_PER_ROUND / 10n) return calls * 10;
    calls *= 2;
  }
}

function round(fn, calls) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) sink ^= fn(buffer);
  return Number(process.hrtime.bigint() - start) / calls;
}

const samples = new Map();
const calls = new Map();
for (const [name, fn] of contenders) {
  if (fn(buffer) !== expected) throw new Error(`${name} disagrees with the fallback`);
  calls.set(name, calibrate(fn));
  samples.set(name, []);
}
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of contenders) samples.get(name).push(round(fn, calls.get(name)));
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const medians = new Map([...samples].map(([name, values]) => [name, median(values)]));
const info = native ? ` (backend ${native.nativeInfo().crc32cBackend})` : '';
console.log(`crc32c, ${SIZE} bytes, median of ${ROUNDS} rounds, node ${process.version}`);
for (const [name, ns] of medians) {
  const gbps = SIZE / ns;
  console.log(`  ${name.padEnd(9)} ${ns.toFixed(0).padStart(8)} ns/op  ${gbps.toFixed(2)} GB/s${name === 'native' ? info : ''}`);
}
if (medians.has('native')) {
  console.log(`  native is ${(medians.get('fallback') / medians.get('native')).toFixed(1)}x the fallback`);
}
if (sink === 0.5) console.log(sink);
