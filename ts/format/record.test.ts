// The byte tables of spec/commit_record_v0.md against ts/format/record.ts:
// every offset the spec names is checked against the constant the code uses,
// and every offset constant the code exports must appear in a spec table
// (the same check ts/format/constants.test.ts does for the file format).

import { describe, expect, it } from 'vitest';
import { parseTables, readSpec, type SpecTable } from '../testing/spec_tables.js';

import * as constants from './record.js';

const spec = readSpec('commit_record_v0.md');
const exported = constants as unknown as Record<string, unknown>;

const tables = parseTables(spec);
const layoutTables = tables.filter((t) => t.header.join('|').toLowerCase() === 'offset|size|constant|field');
const statusTable = tables.find((t) => t.header.join('|').toLowerCase() === 'status|name|check');

interface LayoutRow {
  line: number;
  offset: number;
  size: number | null;
  name: string;
  field: string;
}

const rowsOf = (t: SpecTable): LayoutRow[] =>
  t.rows.map((r) => {
    const name = /^`([A-Z0-9_]+)`$/.exec(r.cells[2] ?? '');
    if (!name) throw new Error(`spec line ${r.line}: constant cell ${JSON.stringify(r.cells[2])} is not a backticked name`);
    const size = /^\d+$/.test(r.cells[1] ?? '') ? Number(r.cells[1]) : null;
    return { line: r.line, offset: Number(r.cells[0]), size, name: name[1]!, field: r.cells[3] ?? '' };
  });
const layoutRows = layoutTables.flatMap(rowsOf);

describe('spec/commit_record_v0.md layout tables', () => {
  it('are found: header, commit payload, op, checkpoint payload, pages-section tail, trailer', () => {
    expect(layoutTables.map((t) => t.section)).toEqual([
      '2.1 Layout',
      '3.1 Commit payload (type 0)',
      '3.2 Op',
      '3.3 Checkpoint payload (type 1)',
      '3.5 Pages section (end of a commit payload with flag bit 1)',
      '4.1 Trailer',
    ]);
    for (const r of layoutRows) expect(Number.isInteger(r.offset), `spec line ${r.line}: offset`).toBe(true);
  });

  it.each(layoutRows.map((r) => [r.name, r.offset, r.line] as const))('names %s at offset %i (spec line %i), which the code exports with that value', (name, offset, line) => {
    expect(name in exported, `spec line ${line} names ${name}, which ts/format/record.ts does not export`).toBe(true);
    expect(exported[name], `${name} (spec line ${line})`).toBe(offset);
  });

  it('lists each table’s fields back to back from offset 0, ending in a size-less end row', () => {
    for (const t of layoutTables) {
      const rows = rowsOf(t);
      expect(rows[0]!.offset, `${t.section}: first offset`).toBe(0);
      for (let i = 0; i + 1 < rows.length; i++) {
        const r = rows[i]!;
        expect(r.size, `spec line ${r.line}: ${r.name} has a size`).not.toBeNull();
        expect(rows[i + 1]!.offset, `spec line ${r.line}: ${r.name} + ${r.size}`).toBe(r.offset + r.size!);
      }
      expect(rows[rows.length - 1]!.size, `${t.section}: end row`).toBeNull();
    }
  });

  it('covers every *_OFFSET constant the code exports', () => {
    const named = new Set(layoutRows.map((r) => r.name));
    expect(Object.keys(exported).filter((k) => k.endsWith('_OFFSET') && !named.has(k))).toEqual([]);
  });

  it('states each magic as the u32 the code uses, its ASCII name and its bytes on disk', () => {
    const magics = [
      ['RECORD_MAGIC_OFFSET', constants.RECORD_MAGIC, 'LOGR'],
      ['COMMIT_MAGIC_OFFSET', constants.COMMIT_MAGIC, 'CMIT'],
      ['CHECKPOINT_MAGIC_OFFSET', constants.CHECKPOINT_MAGIC, 'CHKP'],
      ['PAGES_MAGIC_OFFSET', constants.PAGES_MAGIC, 'PAGS'],
      ['TRAILER_MAGIC_OFFSET', constants.TRAILER_MAGIC, 'RGOL'],
    ] as const;
    for (const [offsetName, magic, ascii] of magics) {
      const row = layoutRows.find((r) => r.name === offsetName)!;
      expect(Number(/`(0x[0-9A-Fa-f]+)`/.exec(row.field)?.[1]), `spec line ${row.line}`).toBe(magic);
      expect(row.field, `spec line ${row.line}`).toContain(`("${ascii}")`);
      // "read most significant byte first" is the ASCII name.
      expect(Buffer.from(ascii, 'latin1').readUInt32BE(0)).toBe(magic);
      const le = Buffer.alloc(4);
      le.writeUInt32LE(magic);
      const bytes = /bytes are `([0-9A-Fa-f ]+)`/.exec(row.field)?.[1];
      expect(bytes?.split(' ').map((x) => parseInt(x, 16)), `spec line ${row.line}: bytes on disk`).toEqual([...le]);
    }
  });

  it('states the record and op types the code uses', () => {
    const types = (field: string): Record<string, number> =>
      Object.fromEntries([...field.split(':')[1]!.split(';')[0]!.matchAll(/(\d+) ([a-z ]+?)(?:,|$)/g)].map((m) => [m[2]!.trim(), Number(m[1])]));
    const recordType = layoutRows.find((r) => r.name === 'RECORD_TYPE_OFFSET')!;
    expect(types(recordType.field)).toEqual({
      commit: constants.RecordType.Commit,
      checkpoint: constants.RecordType.Checkpoint,
    });
    expect(Object.keys(constants.RecordType)).toEqual(['Commit', 'Checkpoint']);
    expect(recordType.field).toContain('every other value is `BadHeader`');
    expect(statusTable!.rows.find((r) => r.cells[1] === '`BadHeader`')!.cells[2]).toContain(`type is ${constants.RecordType.Commit} or ${constants.RecordType.Checkpoint},`);
    const opType = layoutRows.find((r) => r.name === 'OP_TYPE_OFFSET')!;
    expect(types(opType.field)).toEqual({ put: constants.OpType.Put, del: constants.OpType.Del });
    expect(layoutRows.find((r) => r.name === 'RECORD_VERSION_OFFSET')!.field).toBe(`record version, u16 = ${constants.RECORD_VERSION}`);
    expect(layoutRows.find((r) => r.name === 'RECORD_HEADER_LENGTH_OFFSET')!.field).toBe(`header length, u16 = ${constants.RECORD_HEADER_SIZE}`);
    expect(spec).toContain(`the payload length of a checkpoint record is exactly ${constants.CHECKPOINT_PAYLOAD_SIZE}`);
  });

  it('states the pages section’s length, id size and where it sits (§3.5, §5.2)', () => {
    expect(spec).toContain(`Section length = ${constants.PAGES_ID_SIZE} × (written + freed + freedYoung) + ${constants.PAGES_TAIL_SIZE}.`);
    expect(spec).toContain(`each a u64 (\`PAGES_ID_SIZE\` = ${constants.PAGES_ID_SIZE} bytes)`);
    expect(spec).toContain(`a fixed ${constants.PAGES_TAIL_SIZE}-byte tail`);
    expect(spec).toContain(`payload length ≥ ${constants.COMMIT_OPS_OFFSET} + ${constants.PAGES_TAIL_SIZE}`);
  });
});

describe('spec/commit_record_v0.md other numbers', () => {
  it('header flags table (§2.2) matches the RECORD_FLAG_* constants, and every known flag is listed', () => {
    const flags = tables.find((t) => t.header.join('|').toLowerCase() === 'bit|value|name|meaning');
    expect(flags?.section).toBe('2.2 Flags');
    let known = 0;
    for (const r of flags!.rows) {
      const name = /^`(RECORD_FLAG_\w+)`$/.exec(r.cells[2] ?? '')?.[1];
      expect(name, `spec line ${r.line}: name`).toBeDefined();
      const value = exported[name!];
      expect(value, `spec line ${r.line}: ${name}`).toBe(Number(r.cells[1]));
      expect(value, `spec line ${r.line}: bit ${r.cells[0]}`).toBe(2 ** Number(r.cells[0]));
      known |= value as number;
    }
    expect(known).toBe(constants.RECORD_FLAGS_KNOWN);
    const flagConstants = Object.keys(exported).filter((k) => k.startsWith('RECORD_FLAG_'));
    expect(flagConstants.sort()).toEqual(flags!.rows.map((r) => /`(\w+)`/.exec(r.cells[2]!)![1]).sort());
  });

  it('recordVerify status table (§5.1) matches RecordStatus, in check order', () => {
    expect(statusTable).toBeDefined();
    const rows = statusTable!.rows.map((r) => ({ line: r.line, status: Number(r.cells[0]), name: /^`(\w+)`$/.exec(r.cells[1] ?? '')?.[1] }));
    const statuses = constants.RecordStatus as Record<string, number>;
    expect(rows.map((r) => r.name)).toEqual(Object.keys(statuses));
    for (const r of rows) expect(statuses[r.name!], `spec line ${r.line}: RecordStatus.${r.name}`).toBe(r.status);
    expect(rows.map((r) => r.status)).toEqual([-1, -2, -3, -4, -5, -6, -7, -8]);
  });

  it('limits table (§6) matches the limit constants', () => {
    const limits = tables.find((t) => t.section === '6. Limits');
    expect(limits).toBeDefined();
    const cell = (name: string): string => limits!.rows.find((r) => r.cells[0] === name)!.cells[1]!;
    expect(cell('key length')).toContain(`${constants.MIN_RECORD_KEY_SIZE} … ${constants.MAX_RECORD_KEY_SIZE} bytes (\`MAX_RECORD_KEY_SIZE\`)`);
    expect(Number(/… (\d+) MiB \(`MAX_RECORD_VALUE_SIZE`\)/.exec(cell('value length'))?.[1]) * 2 ** 20).toBe(constants.MAX_RECORD_VALUE_SIZE);
    const writer = cell('payload length, writer');
    expect(Number(/default (\d+) MiB \(`DEFAULT_MAX_PAYLOAD`\)/.exec(writer)?.[1]) * 2 ** 20).toBe(constants.DEFAULT_MAX_PAYLOAD);
    expect(Number(/from (\d+) bytes/.exec(writer)?.[1])).toBe(constants.MIN_MAX_PAYLOAD);
    expect(Number(/≤ (\d+) GiB \(`MAX_PAYLOAD_CEILING`\)/.exec(cell('payload length, any reader'))?.[1]) * 2 ** 30).toBe(constants.MAX_PAYLOAD_CEILING);
  });

  it('the header is 40 bytes, the trailer 12, and the header CRC sits at offset 32 (§8 keeps it there)', () => {
    expect(constants.RECORD_HEADER_SIZE).toBe(40);
    expect(constants.TRAILER_SIZE).toBe(12);
    expect(constants.RECORD_HEADER_CRC_OFFSET).toBe(32);
    expect(spec).toContain('the header CRC at offset 32');
  });
});
