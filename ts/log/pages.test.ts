// The pages section of commit records (spec/commit_record_v0.md §3.5) through
// readPagesSection: what RecordBuilder.seal wrote comes back, from whole
// records and from buffers holding only the header and the record's tail,
// and a section that breaks the rules is refused, never misread. The bytes
// themselves are checked against the spec's tables in record.test.ts.

import { describe, expect, it } from 'vitest';

import { NorthstarError } from '../errors.js';
import { implementation, kernels } from '../native/kernels.js';
import { PAGES_TAIL_SIZE, RECORD_HEADER_SIZE, RECORD_PAYLOAD_LENGTH_OFFSET, TRAILER_SIZE } from '../format/record.js';
import { type PagesSection, readPagesSection } from './pages.js';
import { RecordBuilder, buildCheckpointRecord } from './record.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

const PAGES: PagesSection = {
  pageCount: 2 ** 40,
  entryCount: 123456,
  depth: 4,
  written: [100, 101, 2 ** 53 - 1],
  freed: [7, 8],
  freedYoung: [9],
};

function record(pages: PagesSection | null, ops = 3, flags = 0): Uint8Array {
  const b = new RecordBuilder({ initialCapacity: 32 });
  b.reset(77);
  for (let i = 0; i < ops; i++) b.put(bytes(`key${i}`), new Uint8Array(100 * i).fill(i));
  return b.seal(5000, 12, kernels, flags, pages).slice();
}

function expectCode(call: () => unknown, code: string, what: string): void {
  let err: unknown = null;
  try {
    call();
  } catch (e) {
    err = e;
  }
  expect(err, what).toBeInstanceOf(NorthstarError);
  expect((err as NorthstarError).code, `${what}: ${(err as Error).message}`).toBe(code);
}

describe(`readPagesSection (${implementation} kernels)`, () => {
  it('returns what seal wrote, at any offset, with or without the unsynced flag and ops', () => {
    for (const ops of [0, 1, 3]) {
      for (const flags of [0, 1]) {
        const r = record(PAGES, ops, flags);
        expect(kernels.recordVerify(r, 0)).toBe(r.length);
        expect(readPagesSection(r)).toEqual(PAGES);
        const buf = new Uint8Array(r.length + 20);
        buf.set(r, 13);
        expect(readPagesSection(buf, 13)).toEqual(PAGES);
      }
    }
    const empty = { pageCount: 0, entryCount: 0, depth: 0, written: [], freed: [], freedYoung: [] };
    expect(readPagesSection(record(empty, 0))).toEqual(empty);
  });

  it('is null when flag bit 1 is clear, for every record type', () => {
    expect(readPagesSection(record(null))).toBeNull();
    expect(readPagesSection(record(null, 2, 1))).toBeNull();
    expect(readPagesSection(buildCheckpointRecord({ txnId: 1, rootPageId: 2, pageCount: 3, replayFrom: 4 }, 0, kernels))).toBeNull();
  });

  it('reads only the header and the section: the ops may be unread bytes of the buffer', () => {
    const r = record(PAGES, 3);
    const payloadEnd = RECORD_HEADER_SIZE + new DataView(r.buffer).getUint32(RECORD_PAYLOAD_LENGTH_OFFSET, true);
    const section = 8 * 6 + PAGES_TAIL_SIZE;
    // What a reader that preads the header, the last 52 bytes, then the ids has in hand.
    const sparse = new Uint8Array(r.length).fill(0xee);
    sparse.set(r.subarray(0, RECORD_HEADER_SIZE));
    sparse.set(r.subarray(payloadEnd - section, r.length), payloadEnd - section);
    expect(readPagesSection(sparse)).toEqual(PAGES);
    // The trailer is not read either.
    expect(readPagesSection(r.subarray(0, r.length - TRAILER_SIZE))).toEqual(PAGES);
  });

  it('refuses a section that breaks spec §5.2 with Corrupt, a newer version with UnsupportedFormat', () => {
    const base = record(PAGES, 2);
    const v = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const t = base.length - TRAILER_SIZE - PAGES_TAIL_SIZE;
    const cases: [string, (b: Uint8Array) => void, string][] = [
      ['record magic', (b) => { b[0]! ^= 1; }, 'Corrupt'],
      ['version 1', (b) => { v(b).setUint16(4, 1, true); }, 'UnsupportedFormat'],
      ['checkpoint type', (b) => { v(b).setUint16(6, 1, true); }, 'Corrupt'],
      ['tail magic', (b) => { b[t + 36]! ^= 0x80; }, 'Corrupt'],
      ['reserved', (b) => { b[t + 35] = 1; }, 'Corrupt'],
      ['page count 2^53', (b) => { v(b).setBigUint64(t, 2n ** 53n, true); }, 'Corrupt'],
      ['entry count 2^64 - 1', (b) => { v(b).setBigUint64(t + 8, 2n ** 64n - 1n, true); }, 'Corrupt'],
      ['an id 2^53', (b) => { v(b).setBigUint64(t - 16, 2n ** 53n, true); }, 'Corrupt'],
      ['counts past the payload', (b) => { v(b).setUint32(t + 20, 0xffffffff, true); }, 'Corrupt'],
      ['payload too short for a tail', (b) => { v(b).setUint32(RECORD_PAYLOAD_LENGTH_OFFSET, 28 + 39, true); }, 'Corrupt'],
      ['payload past the buffer', (b) => { v(b).setUint32(RECORD_PAYLOAD_LENGTH_OFFSET, b.length, true); }, 'InvalidArgument'],
    ];
    for (const [name, damage, code] of cases) {
      const b = base.slice();
      damage(b);
      expectCode(() => readPagesSection(b), code, name);
    }
  });

  it('rejects bad arguments with InvalidArgument', () => {
    const r = record(PAGES);
    expectCode(() => readPagesSection('x' as unknown as Uint8Array), 'InvalidArgument', 'string');
    expectCode(() => readPagesSection(r, -1), 'InvalidArgument', 'offset -1');
    expectCode(() => readPagesSection(r, 0.5), 'InvalidArgument', 'offset 0.5');
    expectCode(() => readPagesSection(r, r.length - 39), 'InvalidArgument', 'header cut');
    expectCode(() => readPagesSection(r.subarray(0, 39)), 'InvalidArgument', 'short buffer');
  });
});
