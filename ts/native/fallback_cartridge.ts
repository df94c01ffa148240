// Pure-TypeScript twin of the cartridge entry-order kernel
// (crates/northstar-native/src/kernels/cartridge.rs, `entry_disorder`): the
// entry-order part of check 5 of spec/cartridge_v1.md §3, over the entry
// table of §2. Bad arguments throw TypeError (wrong type) or RangeError (a
// value that is not a non-negative safe integer, entries that pass the end of
// the bytes), in the order the Rust export checks them. It never reads outside
// `bytes`, whatever they hold.

/**
 * `CARTRIDGE_ENTRY_SIZE` (spec/cartridge_v1.md §2): rank u32, reserved u32
 * (zero), readyAt u64, id u64, little-endian. Not imported from
 * ts/cartridge/format.ts, which imports the kernels; checked against the
 * spec's table by fallback_cartridge.test.ts.
 */
export const ENTRY_SIZE = 24;
const ENTRY_WORDS = ENTRY_SIZE / 4;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function checkBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

function checkSafeIndex(v: unknown, what: string): asserts v is number {
  if (typeof v !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative safe integer`);
}

/**
 * Within the `count` entries of ENTRY_SIZE bytes at `bytes[at..]`: 0 when every
 * reserved word is 0 and each entry is strictly after the one before in
 * (rank, readyAt, id); else, for the first entry `i` that breaks this, `i`
 * (> 0) when it is not after entry `i − 1`, or `−(i + 1)` when its reserved
 * word is not 0 (checked before it is compared with entry `i − 1`).
 *
 * RangeError when the entries pass the end of `bytes`. The hot loop of a
 * cartridge load: the entries are read as little-endian u32 words, through a
 * Uint32Array view when they are 4-aligned in memory on a little-endian CPU
 * (1M entries in a few ms), else through a DataView.
 */
export function cartridgeDisorder(bytes: Uint8Array, at: number, count: number): number {
  checkBytes(bytes, 'bytes');
  checkSafeIndex(at, 'at');
  checkSafeIndex(count, 'count');
  // Exact below 2^53; a product rounded above that is past any buffer anyway.
  if (at + count * ENTRY_SIZE > bytes.length) throw new RangeError(`${count} entries at ${at} pass the end of ${bytes.length} bytes`);
  if (count === 0) return 0; // no view over a buffer that may be detached
  const start = bytes.byteOffset + at;
  if (LITTLE_ENDIAN && start % 4 === 0) return disorderInWords(new Uint32Array(bytes.buffer, start, count * ENTRY_WORDS), count);
  return disorderInView(new DataView(bytes.buffer, start, count * ENTRY_SIZE), count);
}

// The two loops below are the same comparison, written twice so that each
// stays monomorphic: per entry, words rank, reserved, readyAt (low, high), id
// (low, high), compared as unsigned values most significant first. A
// difference of two u32 words is exact, so its sign is the order.

function disorderInWords(u: Uint32Array, count: number): number {
  for (let i = 0, w = 0; i < count; i++, w += ENTRY_WORDS) {
    if (u[w + 1] !== 0) return -(i + 1);
    if (i === 0) continue;
    const p = w - ENTRY_WORDS;
    const d = u[p]! - u[w]! || u[p + 3]! - u[w + 3]! || u[p + 2]! - u[w + 2]! || u[p + 5]! - u[w + 5]! || u[p + 4]! - u[w + 4]!;
    if (d >= 0) return i;
  }
  return 0;
}

function disorderInView(v: DataView, count: number): number {
  for (let i = 0, o = 0; i < count; i++, o += ENTRY_SIZE) {
    if (v.getUint32(o + 4, true) !== 0) return -(i + 1);
    if (i === 0) continue;
    const p = o - ENTRY_SIZE;
    const d =
      v.getUint32(p, true) - v.getUint32(o, true) ||
      v.getUint32(p + 12, true) - v.getUint32(o + 12, true) ||
      v.getUint32(p + 8, true) - v.getUint32(o + 8, true) ||
      v.getUint32(p + 20, true) - v.getUint32(o + 20, true) ||
      v.getUint32(p + 16, true) - v.getUint32(o + 16, true);
    if (d >= 0) return i;
  }
  return 0;
}
