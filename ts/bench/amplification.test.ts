import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deviceCounter, parseProcIo, writeFigures, writeMedians, type WriteDelta } from './amplification.js';
import { zeroIo } from './registry.js';

// /proc/self/io as Linux 6.x prints it.
const PROC_IO = `rchar: 2012
wchar: 3120
syscr: 7
syscw: 9
read_bytes: 4096
write_bytes: 1052672
cancelled_write_bytes: 8192
`;

const delta = (o: Partial<WriteDelta>): WriteDelta => ({
  commits: 100,
  committedBytes: 100 * 144,
  io: { ...zeroIo(), bytesWritten: 1_600_000, fdatasyncs: 101, fsyncs: 2 },
  deviceBytes: 2_000_000,
  deviceSource: '/proc/self/io',
  ...o,
});

describe('/proc/self/io', () => {
  it('parses the byte counters', () => {
    expect(parseProcIo(PROC_IO)).toEqual({ readBytes: 4096, writeBytes: 1052672, cancelledWriteBytes: 8192 });
  });

  it('is null without a counter (no task I/O accounting) or with a malformed one', () => {
    expect(parseProcIo('')).toBeNull();
    expect(parseProcIo(PROC_IO.replace(/^write_bytes: .*$/m, ''))).toBeNull();
    expect(parseProcIo(PROC_IO.replace('write_bytes: 1052672', 'write_bytes: -3'))).toBeNull();
    // A field name that merely ends like one is not it.
    expect(parseProcIo(PROC_IO.replace(/^write_bytes: .*$/m, 'xwrite_bytes: 5'))).toBeNull();
  });

  it('device bytes = write_bytes − cancelled_write_bytes; unavailable says why and reads null', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-procio-'));
    try {
      const file = path.join(dir, 'io');
      fs.writeFileSync(file, PROC_IO);
      const c = deviceCounter(file);
      expect(c).toMatchObject({ available: true, source: file });
      expect(c.read()).toBe(1052672 - 8192);
      fs.writeFileSync(file, PROC_IO.replace('write_bytes: 1052672', 'write_bytes: 2101248'));
      expect(c.read()).toBe(2101248 - 8192);
      const none = deviceCounter(path.join(dir, 'missing'));
      expect(none.available).toBe(false);
      expect(none.source).toMatch(/^unavailable: /);
      expect(none.read()).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux' && parseProcIo(fs.readFileSync('/proc/self/io', 'utf8')) !== null)('on this Linux machine, counts a synced write of this process', () => {
    const c = deviceCounter();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-procio-'));
    try {
      const before = c.read()!;
      const fd = fs.openSync(path.join(dir, 'f'), 'w');
      fs.writeSync(fd, Buffer.alloc(64 * 1024, 1));
      fs.fdatasyncSync(fd);
      fs.closeSync(fd);
      expect(c.read()! - before).toBeGreaterThanOrEqual(64 * 1024);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('write figures', () => {
  it('per commit and write amplification = bytes written ÷ bytes committed', () => {
    const w = writeFigures(delta({}))!;
    expect(w).toEqual({
      commits: 100,
      committed_bytes: 14_400,
      db_bytes_written: 1_600_000,
      device_bytes_written: 2_000_000,
      device_source: '/proc/self/io',
      fdatasyncs: 101,
      fsyncs: 2,
      committed_bytes_per_commit: 144,
      db_bytes_per_commit: 16_000,
      device_bytes_per_commit: 20_000,
      fdatasyncs_per_commit: 1.01,
      fsyncs_per_commit: 0.02,
      db_write_amplification: 1_600_000 / 14_400,
      device_write_amplification: 2_000_000 / 14_400,
    });
  });

  it('device figures are null where the counter is unavailable, never estimated', () => {
    const w = writeFigures(delta({ deviceBytes: null, deviceSource: 'unavailable: no /proc/self/io on darwin' }))!;
    expect(w.device_bytes_written).toBeNull();
    expect(w.device_bytes_per_commit).toBeNull();
    expect(w.device_write_amplification).toBeNull();
    expect(w.device_source).toBe('unavailable: no /proc/self/io on darwin');
    expect(w.db_write_amplification).toBeCloseTo(111.11, 2);
  });

  it('no commits: no figures; nothing committed (empty commits): no amplification', () => {
    expect(writeFigures(delta({ commits: 0 }))).toBeUndefined();
    const w = writeFigures(delta({ committedBytes: 0 }))!;
    expect(w.db_write_amplification).toBeNull();
    expect(w.device_write_amplification).toBeNull();
    expect(w.db_bytes_per_commit).toBe(16_000);
  });

  it('medians over repeats; a device figure only when every repeat has one', () => {
    const ws = [1_000_000, 3_000_000, 2_000_000].map((b) => writeFigures(delta({ io: { ...zeroIo(), bytesWritten: b, fdatasyncs: 100 }, deviceBytes: b * 2 }))!);
    const m = writeMedians(ws)!;
    expect(m.db_bytes_per_commit).toBe(20_000);
    expect(m.device_bytes_per_commit).toBe(40_000);
    expect(m.fdatasyncs_per_commit).toBe(1);
    expect(m.db_write_amplification).toBeCloseTo(2_000_000 / 14_400);
    const partial = writeMedians([...ws, writeFigures(delta({ deviceBytes: null, deviceSource: 'unavailable: x' }))!])!;
    expect(partial.device_bytes_per_commit).toBeNull();
    expect(partial.device_write_amplification).toBeNull();
    expect(writeMedians([])).toBeUndefined();
  });
});
