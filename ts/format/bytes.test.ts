// Field access and Buffer views (ts/format/bytes.ts).

import { describe, expect, it } from 'vitest';

import { bufferView, compareBytes, readU16, readU32 } from './bytes.js';

describe('bufferView', () => {
  it('is a Buffer over exactly the bytes asked for, sharing them (what Buffer.from(arrayBuffer, offset, length) returns)', () => {
    const ab = new ArrayBuffer(64);
    const bytes = new Uint8Array(ab);
    for (let i = 0; i < 64; i++) bytes[i] = i;
    for (const [off, len] of [
      [0, 64],
      [5, 11],
      [63, 1],
      [20, 0],
    ] as const) {
      const v = bufferView(ab, off, len);
      const ref = Buffer.from(ab, off, len);
      expect(Buffer.isBuffer(v)).toBe(true);
      expect(v).toBeInstanceOf(Buffer);
      expect(v.buffer).toBe(ab);
      expect(v.byteOffset).toBe(off);
      expect(v.length).toBe(len);
      expect(v.equals(ref)).toBe(true);
      expect(v.toString('hex')).toBe(ref.toString('hex'));
      // Buffer methods work on it, and subarray/slice give Buffers too.
      if (len > 1) {
        expect(v.readUInt8(1)).toBe(off + 1);
        expect(Buffer.isBuffer(v.subarray(1))).toBe(true);
      }
    }
    // A view, not a copy: writes through the ArrayBuffer show.
    const v = bufferView(ab, 8, 4);
    bytes[9] = 200;
    expect(v[1]).toBe(200);
  });
});

describe('field access', () => {
  it('readU16 and readU32 are little-endian; compareBytes orders bytes unsigned, a prefix first', () => {
    const b = Uint8Array.from([0x01, 0x02, 0x03, 0xff]);
    expect(readU16(b, 0)).toBe(0x0201);
    expect(readU32(b, 0)).toBe(0xff030201);
    expect(compareBytes(b, 0, 2, Uint8Array.from([1, 2]))).toBe(0);
    expect(compareBytes(b, 0, 2, Uint8Array.from([1, 2, 0]))).toBeLessThan(0);
    expect(compareBytes(b, 3, 1, Uint8Array.from([0x7f]))).toBeGreaterThan(0);
  });
});
