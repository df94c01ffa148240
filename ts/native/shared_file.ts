// The native `SharedFile` class (crates/northstar-native/src/napi_shared.rs):
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
