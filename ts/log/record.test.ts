// Commit-log records (spec/commit_record_v0.md) through the kernels the
// database uses: native in the `native` project, fallback in `fallback`.
// Records built by RecordBuilder are compared byte for byte with an encoder
// written here straight from the spec's tables, then damaged every way a
// disk can damage them.
//
// The seed is printed; replay a failure with NORTHSTAR_SEED=<seed>.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { NorthstarError } from '../errors.js';
import { crc32c } from '../native/crc32c.js';
import { implementation, kernels } from '../native/kernels.js';
import {
  DEFAULT_MAX_PAYLOAD,
  MAX_PAYLOAD_CEILING,
  MAX_RECORD_KEY_SIZE,
  MAX_RECORD_VALUE_SIZE,
  MIN_MAX_PAYLOAD,
  OpType,
  RecordStatus,
  RecordType,
  recordStatusName,
} from '../format/record.js';
import {
  RecordBuilder,
  buildCheckpointRecord,
  decodeRecord,
  scanRecords,
  type CommitRecord,
  type ScanEntry,
} from './record.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`record.test.ts (${implementation}): NORTHSTAR_SEED=${seed}`);

interface Op {
  del: boolean;
  key: Uint8Array;
  value: Uint8Array;
}

// ---- the spec's encoding, written independently of ts/log ------------------------

/** Page ids and counts of a pages section (spec §3.5). */
interface Pages {
  pageCount: number;
  entryCount: number;
  depth: number;
  written: number[];
  freed: number[];
  freedYoung: number[];
}

/**
 * A commit record laid out from spec §2–§4 with DataView and the reference
 * CRC; with `pages`, flag bit 1 and the pages section of §3.5 after the ops.
 */
function specRecord(txnId: number, prev: number, root: number, ops: Op[], flags = 0, pages?: Pages): Uint8Array {
  const ids = pages ? [...pages.written, ...pages.freed, ...pages.freedYoung] : [];
  const section = pages ? 8 * ids.length + 40 : 0;
  const payload = 28 + ops.reduce((n, op) => n + 8 + op.key.length + op.value.length, 0) + section;
  const total = 40 + payload + 12;
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  const u64 = (o: number, x: number): void => v.setBigUint64(o, BigInt(x), true);
  v.setUint32(0, 0x4c4f4752, true);
  v.setUint16(4, 0, true);
  v.setUint16(6, 0, true);
  v.setUint16(8, 40, true);
  v.setUint16(10, flags | (pages ? 2 : 0), true);
  u64(12, txnId);
  u64(20, prev);
  v.setUint32(28, payload, true);
  v.setUint32(40, 0x434d4954, true);
  u64(44, txnId);
  u64(52, root);
  v.setUint32(60, ops.length, true);
  v.setUint32(64, 0, true);
  let i = 68;
  for (const op of ops) {
    b[i] = op.del ? 1 : 0;
    b[i + 1] = 0;
    v.setUint16(i + 2, op.key.length, true);
    v.setUint32(i + 4, op.value.length, true);
    b.set(op.key, i + 8);
    b.set(op.value, i + 8 + op.key.length);
    i += 8 + op.key.length + op.value.length;
  }
  if (pages) {
    for (const id of ids) {
      u64(i, id);
      i += 8;
    }
    u64(i, pages.pageCount);
    u64(i + 8, pages.entryCount);
    v.setUint32(i + 16, pages.depth, true);
    v.setUint32(i + 20, pages.written.length, true);
    v.setUint32(i + 24, pages.freed.length, true);
    v.setUint32(i + 28, pages.freedYoung.length, true);
    v.setUint32(i + 32, 0, true);
    v.setUint32(i + 36, 0x50414753, true);
  }
  v.setUint32(36, crc32c(b.subarray(40, 40 + payload)), true);
  const h = b.slice(0, 40);
  h.fill(0, 32, 36);
  v.setUint32(32, crc32c(h), true);
  const t = 40 + payload;
  v.setUint32(t, 0x52474f4c, true);
  v.setUint32(t + 4, total, true);
  const bound = new Uint8Array(48);
  bound.set(b.subarray(0, 40));
  bound.set(b.subarray(t, t + 8), 40);
  v.setUint32(t + 8, crc32c(bound), true);
  return b;
}

/** Recomputes the header CRC and, if asked, the trailer CRC after a test edits fields. */
function reCrc(b: Uint8Array, trailer = true): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const h = b.slice(0, 40);
  h.fill(0, 32, 36);
  v.setUint32(32, crc32c(h), true);
  if (trailer) {
    const t = b.length - 12;
    const bound = new Uint8Array(48);
    bound.set(b.subarray(0, 40));
    bound.set(b.subarray(t, t + 8), 40);
    v.setUint32(t + 8, crc32c(bound), true);
  }
}

/** Recomputes the payload CRC (then header and trailer CRCs) after a test edits the payload. */
function reCrcPayload(b: Uint8Array): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setUint32(36, crc32c(b.subarray(40, b.length - 12)), true);
  reCrc(b);
}

function build(txnId: number, prev: number, root: number, ops: Op[], builder = new RecordBuilder(), flags = 0, pages?: Pages): Uint8Array {
  builder.reset(txnId);
  for (const op of ops) {
    if (op.del) builder.del(op.key);
    else builder.put(op.key, op.value);
  }
  return builder.seal(prev, root, kernels, flags, pages);
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const put = (k: string | Uint8Array, v: string | Uint8Array): Op => ({ del: false, key: typeof k === 'string' ? bytes(k) : k, value: typeof v === 'string' ? bytes(v) : v });
const del = (k: string | Uint8Array): Op => ({ del: true, key: typeof k === 'string' ? bytes(k) : k, value: new Uint8Array(0) });
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

function expectOps(record: CommitRecord, ops: Op[]): void {
  expect(record.ops.length).toBe(ops.length);
  record.ops.forEach((got, i) => {
    const want = ops[i]!;
    expect(got.type, `op ${i}`).toBe(want.del ? OpType.Del : OpType.Put);
    expect(hex(got.key), `op ${i} key`).toBe(hex(want.key));
    expect(hex(got.value), `op ${i} value`).toBe(hex(want.value));
  });
}

function expectInvalidArgument(call: () => unknown): void {
  try {
    call();
  } catch (e) {
    expect(e).toBeInstanceOf(NorthstarError);
    expect((e as NorthstarError).code).toBe('InvalidArgument');
    return;
  }
  expect.fail('expected InvalidArgument');
}

// ---- generators -------------------------------------------------------------------------

const keyArb = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 32 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: MAX_RECORD_KEY_SIZE }) },
);
const valueArb = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 20000 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ del: fc.constant(false), key: keyArb, value: valueArb }) },
  { weight: 1, arbitrary: fc.record({ del: fc.constant(true), key: keyArb, value: fc.constant(new Uint8Array(0)) }) },
);
const idArb = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const idsArb = fc.oneof({ weight: 3, arbitrary: fc.array(idArb, { maxLength: 8 }) }, { weight: 1, arbitrary: fc.array(idArb, { maxLength: 300 }) });
const pagesArb: fc.Arbitrary<Pages> = fc.record({
  pageCount: idArb,
  entryCount: idArb,
  depth: fc.oneof(fc.nat(64), fc.constant(0xffffffff)),
  written: idsArb,
  freed: idsArb,
  freedYoung: idsArb,
});

// ---- tests ---------------------------------------------------------------------------------

describe(`commit records (${implementation} kernels)`, () => {
  it('known answer: txn 1, first record at 0, root 3, put "k" = "v"', () => {
    const r = build(1, 0, 3, [put('k', 'v')]);
    expect(hex(r)).toBe(hex(specRecord(1, 0, 3, [put('k', 'v')])));
    expect(hex(r)).toBe(KNOWN_ANSWER);
    expect(kernels.recordVerify(r, 0)).toBe(90);
  });

  it('random transactions: the builder writes the spec’s bytes, and they verify and decode back', () => {
    const builder = new RecordBuilder({ initialCapacity: 256 });
    fc.assert(
      fc.property(idArb, idArb, idArb, fc.array(opArb, { maxLength: 40 }), fc.integer({ min: 0, max: 7 }), (txnId, prev, root, ops, shift) => {
        const r = build(txnId, prev, root, ops, builder);
        expect(builder.opCount).toBe(ops.length);
        expect(builder.payloadBytes).toBe(r.length - 52);
        const want = specRecord(txnId, prev, root, ops);
        expect(r.length).toBe(want.length);
        expect(hex(r) === hex(want), 'builder bytes equal the spec encoding').toBe(true);
        // Decoded from an unaligned copy at an offset inside a larger buffer.
        const buf = new Uint8Array(new ArrayBuffer(r.length + 16), shift, r.length + 8);
        buf.set(r, 5);
        expect(kernels.recordVerify(buf, 5)).toBe(r.length);
        const d = decodeRecord(buf, 5, kernels);
        expect(d.type).toBe(RecordType.Commit);
        if (d.type !== RecordType.Commit) return;
        expect([d.length, d.txnId, d.prevPosition, d.rootPageId]).toEqual([r.length, txnId, prev, root]);
        expectOps(d, ops);
        const out = new Uint32Array(4 * ops.length);
        expect(kernels.recordDecode(buf, 5, out)).toBe(ops.length);
        if (ops.length > 0) expect(out[1]).toBe(5 + 40 + 28 + 8);
      }),
      { seed, numRuns: 300 },
    );
  });

  it('random transactions with a pages section: the spec’s bytes, the same ops, and the section back', () => {
    const builder = new RecordBuilder({ initialCapacity: 64 });
    fc.assert(
      fc.property(idArb, idArb, fc.array(opArb, { maxLength: 12 }), pagesArb, fc.constantFrom(0, 1), (txnId, root, ops, pages, flags) => {
        const r = build(txnId, 7, root, ops, builder, flags, pages).slice();
        const want = specRecord(txnId, 7, root, ops, flags, pages);
        expect(hex(r) === hex(want), 'builder bytes equal the spec encoding').toBe(true);
        expect(kernels.recordVerify(r, 0)).toBe(r.length);
        const d = decodeRecord(r, 0, kernels) as CommitRecord;
        expectOps(d, ops);
        expect(d.pages).toEqual(pages);
        // The ops are where they are without the section.
        const plain = build(txnId, 7, root, ops, builder, flags).slice();
        const a = new Uint32Array(4 * ops.length);
        const b = new Uint32Array(4 * ops.length);
        expect(kernels.recordDecode(r, 0, a)).toBe(ops.length);
        expect(kernels.recordDecode(plain, 0, b)).toBe(ops.length);
        expect([...a]).toEqual([...b]);
        expect((decodeRecord(plain, 0, kernels) as CommitRecord).pages).toBeNull();
      }),
      { seed, numRuns: 200 },
    );
  });

  it('damaged pages sections: BadPayload for each rule of spec §5.2, BadHeader for the flag on another type', () => {
    const pages: Pages = { pageCount: 50, entryCount: 1000, depth: 2, written: [10, 11, 12], freed: [3], freedYoung: [2 ** 53 - 1] };
    const base = (): Uint8Array => build(10, 0, 4, [put('ab', 'cd'), del('ef')], new RecordBuilder(), 0, pages).slice();
    const v = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const tail = (b: Uint8Array): number => b.length - 12 - 40;
    expect(kernels.recordVerify(base(), 0)).toBe(base().length);
    const cases: [string, (b: Uint8Array) => void][] = [
      ['tail magic', (b) => { b[tail(b) + 36]! ^= 1; }],
      ['reserved', (b) => { b[tail(b) + 32] = 1; }],
      ['page count 2^53', (b) => { v(b).setBigUint64(tail(b), 2n ** 53n, true); }],
      ['entry count 2^64 - 1', (b) => { v(b).setBigUint64(tail(b) + 8, 2n ** 64n - 1n, true); }],
      ['first id 2^53', (b) => { v(b).setBigUint64(tail(b) - 40, 2n ** 53n, true); }],
      ['last id 2^64 - 1', (b) => { v(b).setBigUint64(tail(b) - 8, 2n ** 64n - 1n, true); }],
      ['written + 1: the section overlaps the last op', (b) => { v(b).setUint32(tail(b) + 20, 4, true); }],
      ['freed - 1: 8 bytes between the ops and the ids', (b) => { v(b).setUint32(tail(b) + 24, 0, true); }],
      ['freedYoung 2^32 - 1', (b) => { v(b).setUint32(tail(b) + 28, 0xffffffff, true); }],
      ['every count 2^32 - 1', (b) => { for (const f of [20, 24, 28]) v(b).setUint32(tail(b) + f, 0xffffffff, true); }],
      ['op count + 1: an op read from the section', (b) => { v(b).setUint32(60, 3, true); }],
      ['flag cleared: the section is left-over bytes', (b) => { v(b).setUint16(10, 0, true); }],
    ];
    for (const [name, damage] of cases) {
      const b = base();
      damage(b);
      reCrcPayload(b);
      expect(recordStatusName(kernels.recordVerify(b, 0)), name).toBe('BadPayload');
      expect(() => kernels.recordDecode(b, 0, new Uint32Array(64)), name).toThrow(RangeError);
    }
    // A payload too short for a tail, with the flag.
    for (const ops of [[], [put('k', 'v')]]) {
      const b = build(3, 0, 0, ops).slice();
      v(b).setUint16(10, 2, true);
      reCrc(b);
      expect(kernels.recordVerify(b, 0), `${ops.length} ops`).toBe(RecordStatus.BadPayload);
    }
    // The smallest section: no ids, no ops.
    const empty = build(3, 0, 0, [], new RecordBuilder(), 0, { pageCount: 2, entryCount: 0, depth: 0, written: [], freed: [], freedYoung: [] });
    expect(kernels.recordVerify(empty, 0)).toBe(40 + 28 + 40 + 12);
    const cp = buildCheckpointRecord({ txnId: 8, rootPageId: 3, pageCount: 12, replayFrom: 4096 }, 1000, kernels);
    v(cp).setUint16(10, 2, true);
    reCrc(cp);
    expect(kernels.recordVerify(cp, 0)).toBe(RecordStatus.BadHeader);
  });

  it('edge cases: no ops, empty value, del, 4096-byte key, 16 MiB value', () => {
    const bigKey = new Uint8Array(MAX_RECORD_KEY_SIZE).map((_, i) => i * 7);
    const bigValue = new Uint8Array(MAX_RECORD_VALUE_SIZE).map((_, i) => i >>> 3);
    const cases: Op[][] = [[], [put('a', '')], [del('gone')], [put(bigKey, 'x'), del(bigKey)], [put('big', bigValue), put('after', 'y')]];
    for (const ops of cases) {
      const r = build(42, 1000, 7, ops);
      expect(kernels.recordVerify(r, 0)).toBe(r.length);
      expect(Buffer.compare(r, specRecord(42, 1000, 7, ops))).toBe(0);
      const d = decodeRecord(r, 0, kernels) as CommitRecord;
      expectOps(d, ops);
    }
    expect(build(1, 0, 0, []).length).toBe(40 + 28 + 12);
  });

  it('detects every single-bit flip in header, payload and trailer, with the status of the part flipped', () => {
    const ops = [put('key', 'value'), del('old'), put(new Uint8Array([0, 255]), new Uint8Array(40).fill(9))];
    const r = build(77, 300, 5, ops).slice();
    const t = r.length - 12;
    const seen = new Set<number>();
    for (let bit = 0; bit < r.length * 8; bit++) {
      const b = r.slice();
      const at = bit >>> 3;
      b[at]! ^= 1 << (bit & 7);
      const s = kernels.recordVerify(b, 0);
      const want = at < 4 ? RecordStatus.BadMagic : at < 40 ? RecordStatus.BadHeaderChecksum : at < t ? RecordStatus.BadPayloadChecksum : RecordStatus.BadTrailer;
      if (s !== want) expect.fail(`bit ${bit} (byte ${at}): ${recordStatusName(s)}, expected ${recordStatusName(want)}`);
      seen.add(s);
    }
    expect(seen.size).toBe(4);
  });

  it('truncation at every length is Incomplete, at any offset', () => {
    const r = build(9, 0, 2, [put('k', 'a longer value to cut'), del('d')]);
    for (const shift of [0, 3]) {
      const buf = new Uint8Array(shift + r.length);
      buf.set(r, shift);
      for (let len = shift; len < buf.length; len++) {
        const s = kernels.recordVerify(buf.subarray(0, len), shift);
        if (s !== RecordStatus.Incomplete) expect.fail(`cut at ${len - shift}: ${recordStatusName(s)}`);
      }
      expect(kernels.recordVerify(buf, shift)).toBe(r.length);
    }
    expect(kernels.recordVerify(new Uint8Array(0), 0)).toBe(RecordStatus.Incomplete);
    expect(kernels.recordVerify(r, r.length)).toBe(RecordStatus.Incomplete);
  });

  it('damaged records: statuses of spec §5.1 for records whose checksums were recomputed after the damage', () => {
    const base = (): Uint8Array => build(10, 0, 4, [put('ab', 'cd'), del('ef')]).slice();
    const v = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const cases: [string, (b: Uint8Array) => void, number][] = [
      ['version 1', (b) => { v(b).setUint16(4, 1, true); reCrc(b); }, RecordStatus.UnsupportedVersion],
      ['version 0xffff', (b) => { v(b).setUint16(4, 0xffff, true); v(b).setUint16(6, 9, true); reCrc(b); }, RecordStatus.UnsupportedVersion],
      ['record type 2 (unassigned, spec §3.4)', (b) => { v(b).setUint16(6, 2, true); reCrc(b); }, RecordStatus.BadHeader],
      ['record type 3', (b) => { v(b).setUint16(6, 3, true); reCrc(b); }, RecordStatus.BadHeader],
      ['header length 41', (b) => { v(b).setUint16(8, 41, true); reCrc(b); }, RecordStatus.BadHeader],
      ['flags 4 (unknown bit)', (b) => { v(b).setUint16(10, 4, true); reCrc(b); }, RecordStatus.BadHeader],
      ['flags 0x8003 (an unknown bit beside the known ones)', (b) => { v(b).setUint16(10, 0x8003, true); reCrc(b); }, RecordStatus.BadHeader],
      ['flags 2 (pages) without a pages section', (b) => { v(b).setUint16(10, 2, true); reCrc(b); }, RecordStatus.BadPayload],
      ['txn id 2^53', (b) => { v(b).setBigUint64(12, 2n ** 53n, true); reCrc(b); }, RecordStatus.BadHeader],
      ['prevPosition 2^64 - 1', (b) => { v(b).setBigUint64(20, 2n ** 64n - 1n, true); reCrc(b); }, RecordStatus.BadHeader],
      ['payload length above the ceiling', (b) => { v(b).setUint32(28, MAX_PAYLOAD_CEILING + 1, true); reCrc(b, false); }, RecordStatus.BadHeader],
      ['payload length one more (runs past the end)', (b) => { v(b).setUint32(28, v(b).getUint32(28, true) + 1, true); reCrc(b, false); }, RecordStatus.Incomplete],
      ['payload length one less', (b) => { v(b).setUint32(28, v(b).getUint32(28, true) - 1, true); reCrc(b, false); }, RecordStatus.BadPayloadChecksum],
      ['trailer magic', (b) => { b[b.length - 12] ^= 1; reCrc(b); }, RecordStatus.BadTrailer],
      ['trailer length', (b) => { v(b).setUint32(b.length - 8, b.length + 1, true); reCrc(b); }, RecordStatus.BadTrailer],
      ['trailer of another record', (b) => { b.set(build(11, 0, 4, [put('ab', 'cd'), del('ef')]).subarray(b.length - 12), b.length - 12); }, RecordStatus.BadTrailer],
      ['commit magic', (b) => { b[40] ^= 1; reCrcPayload(b); }, RecordStatus.BadPayload],
      ['payload txn id differs', (b) => { b[44] ^= 1; reCrcPayload(b); }, RecordStatus.BadPayload],
      ['root 2^53', (b) => { v(b).setBigUint64(52, 2n ** 53n, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['op count + 1', (b) => { v(b).setUint32(60, 3, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['op count - 1', (b) => { v(b).setUint32(60, 1, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['op count 2^32 - 1', (b) => { v(b).setUint32(60, 0xffffffff, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['reserved', (b) => { b[64] = 1; reCrcPayload(b); }, RecordStatus.BadPayload],
      ['op type 2', (b) => { b[68] = 2; reCrcPayload(b); }, RecordStatus.BadPayload],
      ['op flags', (b) => { b[69] = 1; reCrcPayload(b); }, RecordStatus.BadPayload],
      ['key length 0', (b) => { v(b).setUint16(70, 0, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['key length past the payload', (b) => { v(b).setUint16(70, 4000, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['key length 4097', (b) => { v(b).setUint16(70, 4097, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['value length past the payload', (b) => { v(b).setUint32(72, 1000, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['value length above 16 MiB', (b) => { v(b).setUint32(72, MAX_RECORD_VALUE_SIZE + 1, true); reCrcPayload(b); }, RecordStatus.BadPayload],
      ['del with a value', (b) => { b[68] = 1; reCrcPayload(b); }, RecordStatus.BadPayload],
      ['all zeros', (b) => b.fill(0), RecordStatus.BadMagic],
    ];
    for (const [name, damage, want] of cases) {
      const b = base();
      damage(b);
      expect(recordStatusName(kernels.recordVerify(b, 0)), name).toBe(recordStatusName(want));
      if (want === RecordStatus.BadPayload || want === RecordStatus.BadTrailer) {
        expect(() => kernels.recordDecode(b, 0, new Uint32Array(64)), name).toThrow(RangeError);
      }
    }
    // Payload structure is checked only after every checksum: a trailer fault wins over it.
    const b = base();
    b[68] = 2;
    reCrcPayload(b);
    b[b.length - 1] ^= 1;
    expect(kernels.recordVerify(b, 0)).toBe(RecordStatus.BadTrailer);
  });

  it('a valid record followed by garbage, zeros, or a torn record', () => {
    const r = build(3, 0, 1, [put('a', 'b')]);
    const tails: [string, Uint8Array, number][] = [
      ['garbage', new Uint8Array(100).map((_, i) => (i * 37 + 11) & 0xff), RecordStatus.BadMagic],
      ['zeros', new Uint8Array(4096), RecordStatus.BadMagic],
      ['3 bytes', new Uint8Array([1, 2, 3]), RecordStatus.Incomplete],
      ['half a record', build(4, 0, 1, [put('c', 'd')]).slice(0, 50), RecordStatus.Incomplete],
      ['a header alone', build(4, 0, 1, [put('c', 'd')]).slice(0, 40), RecordStatus.Incomplete],
    ];
    for (const [name, tail, want] of tails) {
      const buf = new Uint8Array(r.length + tail.length);
      buf.set(r);
      buf.set(tail, r.length);
      expect(kernels.recordVerify(buf, 0), name).toBe(r.length);
      const entries = [...scanRecords(buf, kernels)];
      expect(entries.map((e) => e.kind), name).toEqual(['record', 'end']);
      expect(entries[1], name).toEqual({ kind: 'end', position: r.length, status: want });
    }
  });

  it('records back to back: scanRecords walks them, positions chain through prevPosition', () => {
    const builder = new RecordBuilder();
    const parts: Uint8Array[] = [];
    let position = 0;
    let prev = 0;
    for (let txn = 1; txn <= 5; txn++) {
      const r = build(txn, prev, txn * 10, [put(`k${txn}`, `v${txn}`), del(`d${txn}`)], builder).slice();
      parts.push(r);
      prev = position;
      position += r.length;
    }
    const cp = buildCheckpointRecord({ txnId: 5, rootPageId: 50, pageCount: 99, replayFrom: position }, prev, kernels);
    parts.push(cp);
    const buf = Buffer.concat(parts);
    const entries: ScanEntry[] = [...scanRecords(buf, kernels)];
    expect(entries.length).toBe(7);
    expect(entries[6]).toEqual({ kind: 'end', position: buf.length, status: 0 });
    let expectPos = 0;
    let expectPrev = 0;
    entries.slice(0, 6).forEach((e, i) => {
      if (e.kind !== 'record') return expect.fail('record expected');
      expect(e.position).toBe(expectPos);
      expect(e.record.prevPosition).toBe(expectPrev);
      expectPrev = expectPos;
      expectPos += e.record.length;
      if (i < 5) expect((e.record as CommitRecord).ops.map((o) => Buffer.from(o.key).toString())).toEqual([`k${i + 1}`, `d${i + 1}`]);
    });
    expect(entries[5]).toMatchObject({ kind: 'record', record: { type: RecordType.Checkpoint, txnId: 5, rootPageId: 50, pageCount: 99, replayFrom: position } });
  });

  it('checkpoint records', () => {
    const cp = buildCheckpointRecord({ txnId: 8, rootPageId: 3, pageCount: 12, replayFrom: 4096 }, 1000, kernels);
    expect(kernels.recordVerify(cp, 0)).toBe(40 + 40 + 12);
    expect(decodeRecord(cp, 0, kernels)).toEqual({ type: RecordType.Checkpoint, length: 92, txnId: 8, prevPosition: 1000, rootPageId: 3, pageCount: 12, replayFrom: 4096 });
    expect(() => kernels.recordDecode(cp, 0, new Uint32Array(4))).toThrow(RangeError);
    const bad = cp.slice();
    new DataView(bad.buffer).setBigUint64(48, 9n, true); // payload txn id ≠ header txn id
    reCrcPayload(bad);
    expect(kernels.recordVerify(bad, 0)).toBe(RecordStatus.BadPayload);
  });

  it('decodeRecord: UnsupportedFormat for a newer version, Corrupt for anything else', () => {
    const r = build(1, 0, 0, [put('a', 'b')]).slice();
    const newer = r.slice();
    new DataView(newer.buffer).setUint16(4, 1, true);
    reCrc(newer);
    expect(() => decodeRecord(newer, 0, kernels)).toThrow(expect.objectContaining({ code: 'UnsupportedFormat' }));
    expect(() => decodeRecord(r.subarray(0, 60), 0, kernels)).toThrow(expect.objectContaining({ code: 'Corrupt', message: expect.stringContaining('Incomplete') }));
    r[50]! ^= 4;
    expect(() => decodeRecord(r, 0, kernels)).toThrow(expect.objectContaining({ code: 'Corrupt', message: expect.stringContaining('BadPayloadChecksum') }));
  });

  it('recordDecode: RangeError for a short out, an invalid record, overlapping memory', () => {
    const r = build(1, 0, 0, [put('a', 'b'), put('c', 'd')]);
    expect(() => kernels.recordDecode(r, 0, new Uint32Array(7))).toThrow(RangeError);
    expect(kernels.recordDecode(r, 0, new Uint32Array(8))).toBe(2);
    expect(() => kernels.recordDecode(r, 1, new Uint32Array(8))).toThrow(RangeError);
    const shared = new Uint8Array(256);
    shared.set(r);
    expect(() => kernels.recordDecode(shared, 0, new Uint32Array(shared.buffer, 128, 8))).toThrow(RangeError);
  });

  it('recordSeal: RangeError when the header or the record does not fit', () => {
    const r = build(1, 0, 0, [put('a', 'b')]).slice();
    expect(() => kernels.recordSeal(r.subarray(0, r.length - 1), 0)).toThrow(RangeError);
    expect(() => kernels.recordSeal(r.subarray(0, 39), 0)).toThrow(RangeError);
    expect(() => kernels.recordSeal(r, 1)).toThrow(RangeError);
    expect(() => kernels.recordSeal(r, r.length + 1)).toThrow(RangeError);
    expect(kernels.recordSeal(r, 0)).toBe(r.length);
  });
});

describe('RecordBuilder limits', () => {
  it('rejects bad keys, values, ids and oversized transactions with InvalidArgument, changing nothing', () => {
    const builder = new RecordBuilder({ maxPayload: MIN_MAX_PAYLOAD });
    builder.reset(5);
    builder.put(bytes('a'), bytes('b'));
    builder.del(bytes('c'));
    const before = builder.seal(1, 2, kernels).slice();
    const state = (): unknown => [builder.opCount, builder.payloadBytes, builder.txnId];
    const was = state();
    const big = new Uint8Array(MAX_RECORD_VALUE_SIZE);
    const bad: [string, () => unknown][] = [
      ['empty key', () => builder.put(new Uint8Array(0), bytes('x'))],
      ['empty key (del)', () => builder.del(new Uint8Array(0))],
      ['4097-byte key', () => builder.put(new Uint8Array(MAX_RECORD_KEY_SIZE + 1), bytes('x'))],
      ['4097-byte key (del)', () => builder.del(new Uint8Array(MAX_RECORD_KEY_SIZE + 1))],
      ['value above 16 MiB', () => builder.put(bytes('k'), new Uint8Array(MAX_RECORD_VALUE_SIZE + 1))],
      ['string key', () => builder.put('k' as unknown as Uint8Array, bytes('x'))],
      ['null value', () => builder.put(bytes('k'), null as unknown as Uint8Array)],
      ['transaction above maxPayload', () => builder.put(new Uint8Array(MAX_RECORD_KEY_SIZE), big)],
      ['prevPosition -1', () => builder.seal(-1, 0, kernels)],
      ['rootPageId 2^53', () => builder.seal(0, 2 ** 53, kernels)],
      ['rootPageId 1.5', () => builder.seal(0, 1.5, kernels)],
      ['txnId "1"', () => builder.reset('1' as unknown as number)],
      ['txnId NaN', () => builder.reset(Number.NaN)],
    ];
    for (const [name, call] of bad) {
      expect(() => expectInvalidArgument(call), name).not.toThrow();
      expect(state(), name).toEqual(was);
    }
    expect(hex(builder.seal(1, 2, kernels))).toBe(hex(before));
    // The largest single put always fits a builder at the smallest maxPayload.
    builder.reset(6);
    builder.put(new Uint8Array(MAX_RECORD_KEY_SIZE), big);
    expect(builder.payloadBytes).toBe(MIN_MAX_PAYLOAD);
    expect(kernels.recordVerify(builder.seal(0, 0, kernels), 0)).toBe(MIN_MAX_PAYLOAD + 52);
  });

  it('rejects bad pages sections and flags with InvalidArgument, changing nothing', () => {
    const builder = new RecordBuilder({ maxPayload: MIN_MAX_PAYLOAD, initialCapacity: 16 });
    builder.reset(5);
    builder.put(bytes('a'), bytes('b'));
    const good: Pages = { pageCount: 9, entryCount: 1, depth: 1, written: [4], freed: [], freedYoung: [3] };
    const before = builder.seal(1, 2, kernels, 0, good).slice();
    const state = (): unknown => [builder.opCount, builder.payloadBytes, builder.txnId];
    const was = state();
    const with_ = (change: Partial<Record<keyof Pages, unknown>>): Pages => ({ ...good, ...change }) as Pages;
    const bad: [string, () => unknown][] = [
      ['flags 2 (the pages flag comes with pages)', () => builder.seal(1, 2, kernels, 2)],
      ['flags 4', () => builder.seal(1, 2, kernels, 4, good)],
      ['flags 0.5', () => builder.seal(1, 2, kernels, 0.5)],
      ['pages a string', () => builder.seal(1, 2, kernels, 0, 'x' as unknown as Pages)],
      ['pageCount 2^53', () => builder.seal(1, 2, kernels, 0, with_({ pageCount: 2 ** 53 }))],
      ['entryCount -1', () => builder.seal(1, 2, kernels, 0, with_({ entryCount: -1 }))],
      ['entryCount missing', () => builder.seal(1, 2, kernels, 0, with_({ entryCount: undefined }))],
      ['depth 2^32', () => builder.seal(1, 2, kernels, 0, with_({ depth: 2 ** 32 }))],
      ['depth 1.5', () => builder.seal(1, 2, kernels, 0, with_({ depth: 1.5 }))],
      ['written id 2^53', () => builder.seal(1, 2, kernels, 0, with_({ written: [1, 2 ** 53] }))],
      ['freed id 1.5', () => builder.seal(1, 2, kernels, 0, with_({ freed: [1.5] }))],
      ['freedYoung id "3"', () => builder.seal(1, 2, kernels, 0, with_({ freedYoung: ['3'] }))],
      ['freedYoung id -1', () => builder.seal(1, 2, kernels, 0, with_({ freedYoung: [-1] }))],
      ['written not an array', () => builder.seal(1, 2, kernels, 0, with_({ written: new Uint32Array(2) }))],
      ['freed missing', () => builder.seal(1, 2, kernels, 0, with_({ freed: undefined }))],
    ];
    for (const [name, call] of bad) {
      expect(() => expectInvalidArgument(call), name).not.toThrow();
      expect(state(), name).toEqual(was);
    }
    expect(hex(builder.seal(1, 2, kernels, 0, good))).toBe(hex(before));
    // maxPayload holds the ops; the section may take the payload past it (a transaction that
    // was accepted op by op never fails at commit for its section).
    builder.reset(6);
    builder.put(new Uint8Array(MAX_RECORD_KEY_SIZE), new Uint8Array(MAX_RECORD_VALUE_SIZE - 100));
    const small = builder.seal(0, 0, kernels, 0, { ...good, written: [] });
    expect(kernels.recordVerify(small, 0)).toBe(MIN_MAX_PAYLOAD - 100 + 48 + 52);
    const past = builder.seal(0, 0, kernels, 0, { ...good, written: Array.from({ length: 7 }, (_, i) => i) });
    expect(kernels.recordVerify(past, 0)).toBe(MIN_MAX_PAYLOAD - 100 + 104 + 52);
    expect(builder.payloadBytes).toBe(MIN_MAX_PAYLOAD - 100);
    expectInvalidArgument(() => builder.put(new Uint8Array(1), new Uint8Array(100)));
    expect(kernels.recordVerify(builder.seal(0, 0, kernels), 0)).toBe(MIN_MAX_PAYLOAD - 100 + 52);
  });

  it('grows its buffer for a large pages section, and put after seal overwrites the section', () => {
    const builder = new RecordBuilder({ initialCapacity: 16 });
    builder.reset(7);
    builder.put(bytes('k'), bytes('v'));
    const pages: Pages = { pageCount: 100000, entryCount: 5, depth: 3, written: Array.from({ length: 5000 }, (_, i) => i + 2), freed: [1], freedYoung: [] };
    const r = builder.seal(0, 1, kernels, 1, pages);
    expect(hex(r)).toBe(hex(specRecord(7, 0, 1, [put('k', 'v')], 1, pages)));
    builder.put(bytes('k2'), bytes('v2'));
    expect(hex(builder.seal(0, 1, kernels))).toBe(hex(specRecord(7, 0, 1, [put('k', 'v'), put('k2', 'v2')])));
    expect(hex(builder.seal(0, 1, kernels, 0, pages))).toBe(hex(specRecord(7, 0, 1, [put('k', 'v'), put('k2', 'v2')], 0, pages)));
  });

  it('rejects maxPayload outside its range and defaults to 64 MiB', () => {
    expect(new RecordBuilder().maxPayload).toBe(DEFAULT_MAX_PAYLOAD);
    expectInvalidArgument(() => new RecordBuilder({ maxPayload: MIN_MAX_PAYLOAD - 1 }));
    expectInvalidArgument(() => new RecordBuilder({ maxPayload: MAX_PAYLOAD_CEILING + 1 }));
    expectInvalidArgument(() => new RecordBuilder({ initialCapacity: -1 }));
  });

  it('grows from a small buffer, keeps earlier ops, and reset starts over', () => {
    const builder = new RecordBuilder({ initialCapacity: 16 });
    const ops = Array.from({ length: 500 }, (_, i) => put(`key-${i}`, new Uint8Array(i % 300).fill(i & 0xff)));
    const r = build(12, 34, 56, ops, builder);
    expect(hex(r)).toBe(hex(specRecord(12, 34, 56, ops)));
    builder.reset(13);
    expect([builder.opCount, builder.payloadBytes, builder.txnId]).toEqual([0, 28, 13]);
    expect(hex(builder.seal(0, 0, kernels))).toBe(hex(specRecord(13, 0, 0, [])));
  });
});

/**
 * build(1, 0, 3, [put('k', 'v')]), pinned (computed by a separate encoder from
 * the spec's tables); log.rs's known-answer test has the same bytes.
 */
const KNOWN_ANSWER =
  '52474f4c00000000280000000100000000000000' + // magic, version, type, header length, flags, txn id 1 …
  '0000000000000000260000005e6f40be54d5952c' + // … prev 0, payload length 38, header CRC, payload CRC
  '54494d4301000000000000000300000000000000' + // "CMIT", txn id 1, root 3 …
  '010000000000000000000100010000006b764c4f' + // … op count 1, reserved; put, key length 1, value length 1, "k", "v"; trailer …
  '47525a0000008ce5a583'; // … "RGOL", total 90, trailer CRC
