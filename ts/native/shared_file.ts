// The native `SharedFile` class (crates/northstar-native/src/napi/shared_file.rs):
// a file mapped shared as a table of atomic 64-bit words, plus an OS file
// lock the kernel releases when its holder dies. The class and its contract
// are documented in the generated crates/northstar-native/index.d.cts. There
// is no TypeScript twin here: without the addon, callers use their own
// file-based fallback (ts/shared/store.ts).

import type { SharedFile } from '../../crates/northstar-native/index.cjs';
import { loadNativeBinding } from './loader.js';

export type { SharedFile };

/**
 * The native `SharedFile` class, or `null` when the addon is not loaded
 * (not built, stale, or disabled by NORTHSTAR_NATIVE=0; `nativeLoadError`
 * says why). Reads the environment on every call, like `loadNativeBinding`.
 */
export function nativeSharedFile(): typeof SharedFile | null {
  return loadNativeBinding()?.SharedFile ?? null;
}

/** Reads one word of a `SharedFile`'s table: what `file.load(word)` returns or throws. */
export type WordReader = (word: number) => number;

/** Typed arrays use the CPU's byte order; the table's words are little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A fast `file.load`: reads word `word` from JavaScript through `file.view()`,
 * in one SeqCst `Atomics.load` of the whole 64-bit word (a `BigInt64Array`
 * element), so it returns a value the word actually held, for any word, as
 * `load` does; no native call (about 10× cheaper than `load`). It throws what
 * `load` throws for a bad `word` (`TypeError`, `RangeError`) or for a word
 * holding a value outside ±(2^53 − 1) (`RangeError`).
 *
 * When `view()` is unavailable (it throws: a runtime without external
 * ArrayBuffers, a stale addon, a closed file) or the CPU is big-endian, the
 * reader is `file.load` itself.
 *
 * The reader does not see `close()`: afterwards it keeps reading the file's
 * words through the mapping it holds (see `SharedFile.view`), where `load`
 * would throw `Error('closed')`. It keeps that mapping, not the lock or the
 * file descriptor, alive while it is reachable; drop it with the file.
 */
export function wordReader(file: SharedFile): WordReader {
  const words = tableWords(file);
  if (words === null) return (word) => file.load(word);
  const count = words.length;
  return (word) => {
    checkWord(word, count);
    const value = Atomics.load(words, word);
    // Exact when |value| < 2^53, else rounded to at least 2^53 in magnitude:
    // the number is out of range exactly when the word is (and comparing
    // numbers is cheaper than comparing BigInts).
    const n = Number(value);
    if (n > Number.MAX_SAFE_INTEGER || n < -Number.MAX_SAFE_INTEGER) throw unsafeValue(word, value);
    return n;
  };
}

/** Writes one word of a `SharedFile`'s table: what `file.store(word, value)` does or throws. */
export type WordWriter = (word: number, value: number) => void;

/**
 * A fast `file.store`: one SeqCst `Atomics.store` of the whole 64-bit word
 * through `file.view()`, as `store` does natively, with the same checks (a
 * word in range, a value that is an integer in ±(2^53 − 1)); no native call.
 * Falls back to `file.store` where `wordReader` falls back to `load`. Like the
 * reader it does not see `close()`: callers stop writing at close.
 */
export function wordWriter(file: SharedFile): WordWriter {
  const words = tableWords(file);
  if (words === null) return (word, value) => file.store(word, value);
  const count = words.length;
  return (word, value) => {
    checkWord(word, count);
    if (!Number.isSafeInteger(value)) throw badValue(value);
    Atomics.store(words, word, BigInt(value));
  };
}

/** The table's words through `file.view()`, one view per file for its reader and writer; null where view() is unavailable or the CPU is big-endian. */
const views = new WeakMap<SharedFile, BigInt64Array>();
function tableWords(file: SharedFile): BigInt64Array | null {
  let words = views.get(file);
  if (words !== undefined) return words;
  if (!LITTLE_ENDIAN) return null;
  try {
    words = new BigInt64Array(file.view());
  } catch {
    return null;
  }
  views.set(file, words);
  return words;
}

/**
 * Throws what the native calls throw for a bad word. Atomics would truncate
 * 1.5 to 1 and convert '1' (the typeof first: `>>>` would throw on a BigInt,
 * call valueOf()).
 */
function checkWord(word: unknown, count: number): asserts word is number {
  if (typeof word !== 'number' || word >>> 0 !== word || word >= count) throw badWord(word, count);
}

function badValue(value: unknown): Error {
  if (typeof value !== 'number') return withCode(new TypeError('value must be a number'), 'ERR_INVALID_ARG_TYPE');
  return withCode(new RangeError(`value ${value} is not an integer in ±(2^53 − 1)`), 'ERR_OUT_OF_RANGE');
}

function badWord(word: unknown, count: number): Error {
  if (typeof word !== 'number') return withCode(new TypeError('word must be a number'), 'ERR_INVALID_ARG_TYPE');
  return withCode(new RangeError(`word ${word} out of range 0..${count - 1}`), 'ERR_OUT_OF_RANGE');
}

function unsafeValue(word: number, value: bigint): Error {
  return withCode(new RangeError(`word ${word} holds ${value}, outside ±(2^53 − 1)`), 'ERR_OUT_OF_RANGE');
}

/** Node's convention, as the native errors carry it. */
function withCode<E extends Error>(error: E, code: string): E {
  return Object.assign(error, { code });
}
