// Write figures of a benchmark that commits: what the database wrote and what
// the device was given, per commit and per committed byte. The database's own
// counters (db.stats().io + logIo) say what it asked of the file system; the
// kernel's per-process counter (/proc/self/io) says what reached the page
// cache as pages made dirty, i.e. what write-back sends to the device.
// Where the kernel counter is unavailable the device figures are null with
// the reason, never estimated.

import * as fs from 'node:fs';
import type { IoCounters } from './registry.js';
import type { WriteFigures, WriteMedians } from './schema.js';
import { median } from './stats.js';

/** Cumulative commits of a benchmark and the bytes they put (key + value of each put, the key of each delete). */
export interface CommitCounters {
  commits: number;
  committedBytes: number;
}

/** The fields of /proc/<pid>/io this harness reads (bytes). */
export interface ProcIo {
  readBytes: number;
  writeBytes: number;
  cancelledWriteBytes: number;
}

/**
 * Parses the text of /proc/self/io (Linux, "name: value" lines); null when a
 * field is missing or not a whole number (a kernel without task I/O accounting).
 */
export function parseProcIo(text: string): ProcIo | null {
  const field = (name: string): number | null => {
    const m = new RegExp(`^${name}:\\s*(\\d+)\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const readBytes = field('read_bytes');
  const writeBytes = field('write_bytes');
  const cancelledWriteBytes = field('cancelled_write_bytes');
  if (readBytes === null || writeBytes === null || cancelledWriteBytes === null) return null;
  return { readBytes, writeBytes, cancelledWriteBytes };
}

/** Where device bytes come from on this machine, or why there are none. */
export interface DeviceCounter {
  available: boolean;
  /** '/proc/self/io' or 'unavailable: <why>'. */
  source: string;
  /**
   * Bytes this process has had written to storage so far: write_bytes less
   * cancelled_write_bytes (dirty pages it truncated away before write-back);
   * null when unavailable.
   */
  read(): number | null;
}

export const PROC_IO = '/proc/self/io';

/** The device counter of this process: /proc/self/io where it can be read and parsed. */
export function deviceCounter(file = PROC_IO): DeviceCounter {
  const sample = (): ProcIo | null => {
    try {
      return parseProcIo(fs.readFileSync(file, 'utf8'));
    } catch {
      return null;
    }
  };
  const first = sample();
  if (first === null) {
    const why = process.platform === 'linux' ? `${file} not readable or without write_bytes (task I/O accounting off)` : `no ${file} on ${process.platform}`;
    return { available: false, source: `unavailable: ${why}`, read: () => null };
  }
  return {
    available: true,
    source: file,
    read: () => {
      const x = sample();
      return x === null ? null : x.writeBytes - x.cancelledWriteBytes;
    },
  };
}

/** What a measured loop that commits saw, as deltas over the loop. */
export interface WriteDelta {
  commits: number;
  committedBytes: number;
  /** The database's counters over the loop: data file and log. */
  io: IoCounters;
  /** Device bytes over the loop; null when unavailable. */
  deviceBytes: number | null;
  deviceSource: string;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/**
 * The write figures of one repeat: per commit, and write amplification
 * (bytes written ÷ bytes committed) for what the database wrote and for what
 * the device was given. Undefined when the loop committed nothing.
 */
export function writeFigures(d: WriteDelta): WriteFigures | undefined {
  if (d.commits <= 0) return undefined;
  const device = d.deviceBytes;
  return {
    commits: d.commits,
    committed_bytes: d.committedBytes,
    db_bytes_written: d.io.bytesWritten,
    device_bytes_written: device,
    device_source: d.deviceSource,
    fdatasyncs: d.io.fdatasyncs,
    fsyncs: d.io.fsyncs,
    committed_bytes_per_commit: d.committedBytes / d.commits,
    db_bytes_per_commit: d.io.bytesWritten / d.commits,
    device_bytes_per_commit: device === null ? null : device / d.commits,
    fdatasyncs_per_commit: d.io.fdatasyncs / d.commits,
    fsyncs_per_commit: d.io.fsyncs / d.commits,
    db_write_amplification: ratio(d.io.bytesWritten, d.committedBytes),
    device_write_amplification: device === null ? null : ratio(device, d.committedBytes),
  };
}

/** Medians over repeats; a device figure is null unless every repeat has one. */
export function writeMedians(ws: readonly WriteFigures[]): WriteMedians | undefined {
  if (ws.length === 0) return undefined;
  const med = (pick: (w: WriteFigures) => number | null): number | null => {
    const xs = ws.map(pick);
    return xs.every((x): x is number => x !== null) ? median(xs) : null;
  };
  return {
    committed_bytes_per_commit: med((w) => w.committed_bytes_per_commit)!,
    db_bytes_per_commit: med((w) => w.db_bytes_per_commit)!,
    device_bytes_per_commit: med((w) => w.device_bytes_per_commit),
    fdatasyncs_per_commit: med((w) => w.fdatasyncs_per_commit)!,
    fsyncs_per_commit: med((w) => w.fsyncs_per_commit)!,
    db_write_amplification: med((w) => w.db_write_amplification),
    device_write_amplification: med((w) => w.device_write_amplification),
  };
}
