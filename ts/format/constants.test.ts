// The byte tables of spec/file_format_v1.md against ts/format/constants.ts:
// prose and code drift apart, so every offset the spec names is checked
// against the constant the code uses, and every offset constant the code
// exports must appear in a spec table.

import { describe, expect, it } from 'vitest';
import { parseTables, readSpec } from '../testing/spec_tables.js';

import * as constants from './constants.js';
import { maxKeySize } from './page.js';

const spec = readSpec('file_format_v1.md');
const exported = constants as unknown as Record<string, unknown>;

const tables = parseTables(spec);
const layoutTables = tables.filter((t) => t.header.join('|').toLowerCase() === 'offset|size|constant|field');
const statusTable = tables.find((t) => t.header.join('|').toLowerCase() === 'status|name|check');

/** A layout row: its offset, size (null when it depends on a count) and constant name. */
interface LayoutRow {
  section: string;
  line: number;
  offset: number;
  size: number | null;
  name: string;
}

const layoutRows: LayoutRow[] = layoutTables.flatMap((t) =>
  t.rows.map((r) => {
    const name = /^`([A-Z0-9_]+)`$/.exec(r.cells[2] ?? '');
    if (!name) throw new Error(`spec line ${r.line}: constant cell ${JSON.stringify(r.cells[2])} is not a backticked name`);
    const size = /^\d+$/.test(r.cells[1] ?? '') ? Number(r.cells[1]) : null;
    return { section: t.section, line: r.line, offset: Number(r.cells[0]), size, name: name[1]! };
  }),
);

describe('spec/file_format_v1.md layout tables', () => {
  it('are found: page header, meta, node header, both cells and the overflow reference, overflow, freelist, history and the log file header', () => {
    expect(layoutTables.map((t) => t.section)).toEqual([
      '2.1 Layout',
      '3. Meta pages (0 and 1)',
      '4.1 Node header and slots',
      '4.2 Cells',
      '4.2 Cells',
      '4.2 Cells',
      '5. Overflow pages',
      '6. Freelist pages',
      '6.2 History pages (`ts/pager/history.ts`)',
      '8.4 The log file and sector alignment (`ts/log/file.ts`)',
    ]);
    expect(layoutRows.length).toBeGreaterThan(40);
    for (const r of layoutRows) expect(Number.isInteger(r.offset), `spec line ${r.line}: offset`).toBe(true);
  });

  it.each(layoutRows.map((r) => [r.name, r.offset, r.line] as const))('names %s at offset %i (spec line %i), which the code exports with that value', (name, offset, line) => {
    expect(name in exported, `spec line ${line} names ${name}, which ts/format/constants.ts does not export`).toBe(true);
    expect(exported[name], `${name} (spec line ${line})`).toBe(offset);
  });

  it('lists each table’s fields back to back: offset + size is the next row’s offset', () => {
    for (const t of layoutTables) {
      const rows = layoutRows.filter((r) => r.line >= t.rows[0]!.line && r.line <= t.rows[t.rows.length - 1]!.line);
      for (let i = 0; i + 1 < rows.length; i++) {
        const r = rows[i]!;
        if (r.size === null) continue;
        expect(rows[i + 1]!.offset, `spec line ${r.line}: ${r.name} + ${r.size}`).toBe(r.offset + r.size);
      }
    }
  });

  it('covers every *_OFFSET constant the code exports', () => {
    const named = new Set(layoutRows.map((r) => r.name));
    const missing = Object.keys(exported).filter((k) => k.endsWith('_OFFSET') && !named.has(k));
    expect(missing).toEqual([]);
  });
});

describe('spec/file_format_v1.md other numbers', () => {
  it('pageVerify status table (§2.3) matches PageStatus', () => {
    expect(statusTable).toBeDefined();
    const rows = statusTable!.rows.map((r) => ({ line: r.line, status: Number(r.cells[0]), name: /^`(\w+)`$/.exec(r.cells[1] ?? '')?.[1] }));
    expect(rows.length).toBe(7);
    const statuses = constants.PageStatus as Record<string, number>;
    for (const r of rows) {
      expect(r.name, `spec line ${r.line}`).toBeDefined();
      expect(r.name! in statuses, `spec line ${r.line} names ${r.name}, which PageStatus lacks`).toBe(true);
      expect(statuses[r.name!], `PageStatus.${r.name}`).toBe(r.status);
    }
    expect(Object.keys(statuses).filter((k) => k !== 'Ok').sort()).toEqual(rows.map((r) => r.name).sort());
  });

  it('magic numbers, page types, meta payload length and page sizes (§1–§3) match', () => {
    // The magic rows state the u32 and, optionally, its little-endian bytes on disk.
    for (const [offsetName, magic] of [['MAGIC_OFFSET', constants.PAGE_MAGIC], ['META_MAGIC_OFFSET', constants.META_MAGIC]] as const) {
      const row = layoutTables.flatMap((t) => t.rows).find((r) => r.cells[2] === `\`${offsetName}\``)!;
      const field = row.cells[3]!;
      expect(Number(/`(0x[0-9A-Fa-f]+)`/.exec(field)?.[1]), `spec line ${row.line}`).toBe(magic);
      const bytes = /bytes `([0-9A-Fa-f ]+)`/.exec(field)?.[1];
      if (bytes !== undefined) {
        const le = Buffer.alloc(4);
        le.writeUInt32LE(magic);
        expect(bytes.split(' ').map((x) => parseInt(x, 16)), `spec line ${row.line}: bytes on disk`).toEqual([...le]);
      }
    }
    const types = /page type: (.*?) \|/.exec(spec)?.[1];
    expect(types).toBeDefined();
    const parsed = Object.fromEntries([...types!.matchAll(/(\d+) (\w+)/g)].map((m) => [m[2]!, Number(m[1])]));
    expect(parsed).toEqual({
      meta: constants.PageType.Meta,
      branch: constants.PageType.Branch,
      leaf: constants.PageType.Leaf,
      freelist: constants.PageType.Freelist,
      overflow: constants.PageType.Overflow,
      history: constants.PageType.History,
    });
    expect(Number(/Page type 1\. Payload length (\d+)\./.exec(spec)?.[1])).toBe(constants.META_PAYLOAD_LENGTH);
    const sizes = /`pageSize` is (\d+), (\d+), (\d+) \(default\) or (\d+) bytes/.exec(spec);
    expect(sizes?.slice(1).map(Number)).toEqual([...constants.PAGE_SIZES]);
    expect(Number(sizes![3])).toBe(constants.DEFAULT_PAGE_SIZE);
  });

  it('log file header (§8.4): magic, version, length, sector sizes and the CRC range match', () => {
    const rows = layoutTables.find((t) => t.section.startsWith('8.4 '))!.rows;
    const field = (name: string): string => rows.find((r) => r.cells[2] === `\`${name}\``)!.cells[3]!;
    expect(Number(/`(0x[0-9A-Fa-f]+)`/.exec(field('LOG_MAGIC_OFFSET'))?.[1])).toBe(constants.LOG_FILE_MAGIC);
    expect(field('LOG_MAGIC_OFFSET')).toContain('("NSLG")');
    expect(Buffer.from('NSLG', 'latin1').readUInt32BE(0)).toBe(constants.LOG_FILE_MAGIC);
    expect(field('LOG_VERSION_OFFSET')).toBe(`log file version, ${constants.LOG_FILE_VERSION}`);
    expect(field('LOG_HEADER_LENGTH_OFFSET')).toBe(`header length, ${constants.LOG_HEADER_SIZE}`);
    expect(/^(\d+), (\d+) or (\d+):/.exec(field('LOG_SECTOR_SIZE_OFFSET'))?.slice(1).map(Number)).toEqual([...constants.LOG_SECTOR_SIZES]);
    expect(field('LOG_HEADER_CRC_OFFSET')).toBe(`CRC32C of bytes 0 … ${constants.LOG_HEADER_CRC_OFFSET - 1}`);
    // The table has no end row: the header ends where its last field does.
    const last = layoutRows.filter((r) => r.section.startsWith('8.4 ')).at(-1)!;
    expect(last.offset + last.size!).toBe(constants.LOG_HEADER_SIZE);
    expect(spec).toContain(`starts with a ${constants.LOG_HEADER_SIZE}-byte header`);
    expect(spec).toContain(`Position \`p\` is at file offset \`p − base + ${constants.LOG_HEADER_SIZE}\`.`);
  });

  it('format version (§2.1, §3, §10) matches FORMAT_VERSION', () => {
    for (const name of ['VERSION_OFFSET', 'META_VERSION_OFFSET']) {
      const row = layoutTables.flatMap((t) => t.rows).find((r) => r.cells[2] === `\`${name}\``)!;
      expect(Number(/u16 = (\d+)/.exec(row.cells[3]!)?.[1]), `spec line ${row.line}`).toBe(constants.FORMAT_VERSION);
    }
    expect(spec).toContain(`# NorthstarDB file format, version ${constants.FORMAT_VERSION}`);
    expect(spec).toContain(`- v${constants.FORMAT_VERSION}: this document.`);
  });

  it('freelist and history entry sizes (§6, §6.2) match FREELIST_ENTRY_SIZE and HISTORY_ENTRY_SIZE', () => {
    for (const [offsetName, size, section] of [
      ['FREELIST_ENTRIES_OFFSET', constants.FREELIST_ENTRY_SIZE, '6. Freelist pages'],
      ['HISTORY_ENTRIES_OFFSET', constants.HISTORY_ENTRY_SIZE, '6.2 History pages'],
    ] as const) {
      const row = layoutTables.filter((t) => t.section.startsWith(section)).flatMap((t) => t.rows).find((r) => r.cells[2] === `\`${offsetName}\``);
      expect(row, offsetName).toBeDefined();
      expect(Number(/^(\d+) × count$/.exec(row!.cells[1]!)?.[1]), `spec line ${row!.line}`).toBe(size);
      const header = (exported[offsetName] as number) - constants.HEADER_SIZE;
      expect(spec, `${section}: payload length formula`).toContain(`Payload length = ${header} + ${size} × count`);
    }
  });

  it('limits table (§7) matches MAX_KEY_SIZE and MAX_VALUE_SIZE', () => {
    const limits = tables.find((t) => t.section === '7. Limits');
    expect(limits).toBeDefined();
    const key = limits!.rows.find((r) => r.cells[0] === 'key length')!.cells[1]!;
    expect(Number(/min\((\d+),/.exec(key)?.[1])).toBe(constants.MAX_KEY_SIZE);
    const value = limits!.rows.find((r) => r.cells[0] === 'value length')!.cells[1]!;
    expect(value).toContain('`MAX_VALUE_SIZE`');
    expect(Number(/(\d+) MiB/.exec(value)?.[1]) * 1024 * 1024).toBe(constants.MAX_VALUE_SIZE);
  });

  it('maximum key length per page size (§4.7) matches maxKeySize()', () => {
    const sentence = /Maximum key length:([^\n]*(?:\n  [^\n]*)*)/.exec(spec)?.[1];
    expect(sentence).toBeDefined();
    const text = sentence!.replace(/\s+/g, ' ');
    const stated = new Map<number, number>();
    for (const m of text.matchAll(/(\d+) bytes for ((?:\d+ KiB(?:,| and)? ?)+) pages/g)) {
      for (const kib of m[2]!.matchAll(/(\d+) KiB/g)) stated.set(Number(kib[1]) * 1024, Number(m[1]));
    }
    expect([...stated.keys()].sort((a, b) => a - b)).toEqual([...constants.PAGE_SIZES]);
    expect(Object.fromEntries(stated)).toEqual({ 4096: 1320, 8192: 2685, 16384: 4096, 32768: 4096 });
    for (const [pageSize, max] of stated) expect(maxKeySize(pageSize), `maxKeySize(${pageSize})`).toBe(max);
    // The formula the spec gives, min(4096, floor(usable / 3) − 24) with usable = pageSize − 64.
    expect(text).toContain('min(4096, floor(usable / 3) − 24)');
    for (const pageSize of constants.PAGE_SIZES) {
      expect(maxKeySize(pageSize)).toBe(Math.min(4096, Math.floor((pageSize - 64) / 3) - 24));
    }
  });
});
