// Page bytes straight from a read-only shared mapping of the data file
// (spec/file_format_v1.md §9.3), in place of a pread into a new buffer per
// page. The file is seen through windows of SEGMENT_BYTES (the addon's
// FileMapping), each reserved once at full length and mapped as far as the
// file reaches; a page past what a window has mapped maps the file's growth
// into it in place, so no view ever covers a file page past the end of the
// file, and the window's ArrayBuffer never changes.
//
// A window is made at the MAP_AFTER_READS-th page read from it, not the
// first: its ArrayBuffer counts SEGMENT_BYTES of external memory towards V8's
// next collection (about one collection per window), which costs more than
// preading a few pages. Opening a database and reading one key reads its
// path from the root (3 or 4 pages, often all in the window the last commit
// wrote) and the history chain, and makes no window: 0.2 ms instead of 3.

import type { FileMapping } from '../../crates/northstar-native/index.cjs';
import { bufferView } from '../format/bytes.js';
import { NodeFile, type DbFile } from '../io/file.js';
import { loadNativeBinding } from '../native/loader.js';
import { implementation } from '../native/kernels.js';

/** The addon's FileMapping class. */
export type FileMappingClass = typeof FileMapping;

/**
 * Bytes per window: 64 MiB, a multiple of every page size and of the addon's
 * 64 KiB alignment, so no page straddles two windows.
 */
export const SEGMENT_BYTES = 1 << 26;

/** Page reads in a window before it is mapped (the earlier ones are preads: see the file's notes). */
export const MAP_AFTER_READS = 8;

/**
 * The addon's FileMapping when the native kernels are in use, mapping is not
 * turned off (NORTHSTAR_MMAP=0) and the platform maps (not Windows, where a
 * mapped file cannot be replaced or removed until every view is collected);
 * else null, and the pager reads with pread.
 */
export function pageMapper(): FileMappingClass | null {
  if (implementation !== 'native' || process.platform === 'win32' || process.env.NORTHSTAR_MMAP === '0') return null;
  return loadNativeBinding()?.FileMapping ?? null;
}

/** What a Pager maps with: the file's descriptor and the addon's FileMapping class. */
export interface PageMapping {
  fd: number;
  Mapping: FileMappingClass;
}

/** The mapping for `file` when pageMapper() maps and `file` is a real file (not the fault-injecting one), else null. */
export function mappingFor(file: DbFile): PageMapping | null {
  if (!(file instanceof NodeFile)) return null;
  const Mapping = pageMapper();
  return Mapping === null ? null : { fd: file.descriptor, Mapping };
}

interface Window {
  readonly mapping: FileMapping;
  readonly buffer: ArrayBuffer;
  /** Bytes of the window the file is mapped over, from its start. */
  mapped: number;
}

export class PageMap {
  /** Windows by index; null: mapping window k failed, read its pages with pread; undefined: not made yet. */
  private readonly windows: (Window | null | undefined)[] = [];
  /** Pages asked for from each window not made yet. */
  private readonly asked: number[] = [];
  private closed = false;
  /** Pages served from the mapping. */
  pages = 0;

  constructor(
    private readonly fd: number,
    private readonly pageSize: number,
    private readonly Mapping: FileMappingClass,
  ) {}

  /**
   * A read-only view of page `id`'s bytes in the file, or null when the page
   * lies past the end of the file, its window is not mapped yet (fewer than
   * MAP_AFTER_READS pages asked for from it) or the mapping failed: the
   * caller then reads with pread, which reports a page past the end. Never
   * modify it.
   */
  page(id: number): Uint8Array | null {
    if (this.closed) return null; // the descriptor may name another file by now
    const pos = id * this.pageSize;
    const k = Math.floor(pos / SEGMENT_BYTES);
    const off = pos - k * SEGMENT_BYTES;
    const end = off + this.pageSize;
    let w = this.windows[k];
    if (w === undefined) {
      const n = (this.asked[k] ?? 0) + 1;
      if (n < MAP_AFTER_READS) {
        this.asked[k] = n;
        return null;
      }
      w = this.open(k);
    }
    if (w === null) return null;
    if (w.mapped < end) {
      // The file may have grown since: map the growth into the window.
      try {
        w.mapped = w.mapping.refresh();
      } catch {
        return null;
      }
      if (w.mapped < end) return null;
    }
    this.pages++;
    return bufferView(w.buffer, off, this.pageSize);
  }

  private open(k: number): Window | null {
    let w: Window | null = null;
    try {
      const mapping = new this.Mapping(this.fd, k * SEGMENT_BYTES, SEGMENT_BYTES);
      w = { mapping, buffer: mapping.buffer(), mapped: mapping.mapped };
    } catch {
      // Address space, a runtime without external buffers: pread instead.
    }
    this.windows[k] = w;
    return w;
  }

  /** Maps nothing more and releases the windows; views handed out keep theirs mapped until collected. */
  close(): void {
    this.closed = true;
    for (const w of this.windows) w?.mapping.close();
    this.windows.length = 0;
    this.asked.length = 0;
  }
}
