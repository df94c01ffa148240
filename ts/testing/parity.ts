// Shared by the native/fallback parity tests (ts/native/parity*.test.ts):
// whether they run, the native kernels they compare, and the outcome of a
// kernel call in a comparable form.

import { type Kernels, nativeKernels } from '../native/kernels.js';
import { nativeLoadError } from '../native/loader.js';

/** CI sets NORTHSTAR_REQUIRE_NATIVE=1: then a missing addon fails instead of skipping. */
export const nativeRequired = process.env.NORTHSTAR_REQUIRE_NATIVE === '1' && process.env.NORTHSTAR_NATIVE !== '0';
/** Parity suites skip when the addon is absent and not required. */
export const skipParity = nativeKernels === null && !nativeRequired;

export function nativeOrFail(): Kernels {
  if (nativeKernels === null) {
    throw new Error(`native kernels required (NORTHSTAR_REQUIRE_NATIVE=1) but not loaded: ${nativeLoadError ?? 'addon lacks kernels'}`);
  }
  return nativeKernels;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: 'TypeError' | 'RangeError' };

/** Runs a kernel call; any exception other than TypeError/RangeError fails the test. */
export function outcome(call: () => unknown): Outcome {
  try {
    return { ok: true, value: call() };
  } catch (e) {
    if (e instanceof TypeError) return { ok: false, error: 'TypeError' };
    if (e instanceof RangeError) return { ok: false, error: 'RangeError' };
    throw new Error(`kernel threw something other than TypeError/RangeError: ${String(e)}`);
  }
}
