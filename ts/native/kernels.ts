// The kernel set the storage engine calls on every page access and every
// commit-log record, and a cartridge load calls over its entry table, bound
// once at load to the native addon or to the pure-TypeScript fallback
// (spec/file_format_v1.md §2 and §4, spec/commit_record_v0.md §4–§5 and
// spec/cartridge_v1.md §3 define each kernel). Both implementations are
// byte-identical; ts/native/parity.test.ts, ts/native/parity_cartridge.test.ts
// and ts/log/parity.test.ts check it.

import * as fallback from './fallback.js';
import * as fallbackLog from './fallback_log.js';
import * as fallbackCartridge from './fallback_cartridge.js';
import { crc32c as crc32cFallback } from './crc32c.js';
import { announceFallback, loadNativeBinding, nativeLoadError } from './loader.js';

export interface Kernels {
  crc32c(data: Uint8Array, seed?: number): number;
  pageSeal(page: Uint8Array): void;
  pageVerify(page: Uint8Array, expectedPageId: number): number;
  leafSearch(page: Uint8Array, key: Uint8Array): number;
  branchSearch(page: Uint8Array, key: Uint8Array): number;
  leafInsert(page: Uint8Array, index: number, key: Uint8Array, inline: Uint8Array, vlenField: number): boolean;
  branchInsert(page: Uint8Array, index: number, key: Uint8Array, child: number, childTxn: number): boolean;
  nodeRemove(page: Uint8Array, index: number): void;
  nodeCompact(page: Uint8Array): void;
  nodeSplit(src: Uint8Array, dst: Uint8Array, at: number): boolean;
  nodeMerge(dst: Uint8Array, src: Uint8Array): boolean;
  nodeDecode(page: Uint8Array, out: Uint32Array): number;
  /** Writes the CRCs and trailer of the record at buf[offset..]; returns its total length. */
  recordSeal(buf: Uint8Array, offset: number): number;
  /** Total length (> 0) of the whole, valid record at buf[offset..], else a RecordStatus (< 0). */
  recordVerify(buf: Uint8Array, offset: number): number;
  /** Four u32 per op of a valid commit record into out; returns the op count. */
  recordDecode(buf: Uint8Array, offset: number, out: Uint32Array): number;
  /**
   * Cartridge entry order (spec/cartridge_v1.md §3, check 5) of the `count`
   * 24-byte entries at bytes[at..]: 0 when each is strictly after the one
   * before in (rank, readyAt, id) and every reserved word is 0; else i > 0, the
   * first entry not after entry i − 1, or −(i + 1) when entry i's reserved word
   * is not 0. RangeError when the entries pass the end of `bytes`.
   */
  cartridgeDisorder(bytes: Uint8Array, at: number, count: number): number;
}

export type Implementation = 'native' | 'fallback';

export const fallbackKernels: Kernels = {
  crc32c: crc32cFallback,
  pageSeal: fallback.pageSeal,
  pageVerify: fallback.pageVerify,
  leafSearch: fallback.leafSearch,
  branchSearch: fallback.branchSearch,
  leafInsert: fallback.leafInsert,
  branchInsert: fallback.branchInsert,
  nodeRemove: fallback.nodeRemove,
  nodeCompact: fallback.nodeCompact,
  nodeSplit: fallback.nodeSplit,
  nodeMerge: fallback.nodeMerge,
  nodeDecode: fallback.nodeDecode,
  recordSeal: fallbackLog.recordSeal,
  recordVerify: fallbackLog.recordVerify,
  recordDecode: fallbackLog.recordDecode,
  cartridgeDisorder: fallbackCartridge.cartridgeDisorder,
};

const KERNEL_NAMES = Object.keys(fallbackKernels) as (keyof Kernels)[];

function bindNative(): Kernels | null {
  const binding = loadNativeBinding() as Record<string, unknown> | null;
  if (binding === null) return null;
  const out: Partial<Record<keyof Kernels, unknown>> = {};
  for (const name of KERNEL_NAMES) {
    const f = binding[name];
    // An addon built from an older source lacks kernels: use the fallback whole
    // rather than mixing implementations.
    if (typeof f !== 'function') return null;
    out[name] = f;
  }
  return out as Kernels;
}

const native = bindNative();

/** The native kernels, or null when the addon is absent, disabled or incomplete. */
export const nativeKernels: Kernels | null = native;

/** The kernels the database uses: native unless NORTHSTAR_NATIVE=0 or the addon is missing. */
export const kernels: Kernels = native ?? fallbackKernels;

/** Which implementation `kernels` is. */
export const implementation: Implementation = native ? 'native' : 'fallback';

/** Why the native addon is not in use, or null when it is. */
export const nativeUnavailableReason: string | null = native
  ? null
  : process.env.NORTHSTAR_NATIVE === '0'
    ? 'disabled by NORTHSTAR_NATIVE=0'
    : (nativeLoadError ?? 'addon lacks kernels (rebuild with npm run build)');

if (nativeUnavailableReason !== null) announceFallback(nativeUnavailableReason);
