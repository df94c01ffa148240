// The lock-file word tables of spec/concurrency_v0.md §2 against
// ts/shared/layout.ts: every word the spec names is checked against the
// constant the code uses, every word constant the code exports must appear in
// a spec table, and the numbers the text states around the tables (magic,
// version, slot count, file size, flag bits, owner ids) must be the code's.

import { describe, expect, it } from 'vitest';
import { parseTables, readSpec, tablesWithHeader, type SpecTable } from '../testing/spec_tables.js';

import * as layout from './layout.js';

const spec = readSpec('concurrency_v0.md');
const exported = layout as unknown as Record<string, unknown>;

const wordTables = tablesWithHeader(parseTables(spec), 'Word', 'Constant', 'Field');

interface WordRow {
  line: number;
  /** The word index; for a reader slot, the index within the slot (`+n`). */
  word: number;
  name: string;
  field: string;
}

const rowsOf = (t: SpecTable): WordRow[] =>
  t.rows.map((r) => {
    const word = /^\+?(\d+)$/.exec(r.cells[0] ?? '');
    if (!word) throw new Error(`spec line ${r.line}: word cell ${JSON.stringify(r.cells[0])} is not a number or +number`);
    const name = /^`([A-Z0-9_]+)`$/.exec(r.cells[1] ?? '');
    if (!name) throw new Error(`spec line ${r.line}: constant cell ${JSON.stringify(r.cells[1])} is not a backticked name`);
    return { line: r.line, word: Number(word[1]), name: name[1]!, field: r.cells[2] ?? '' };
  });
const section = (prefix: string): WordRow[] => rowsOf(wordTables.find((t) => t.section.startsWith(prefix))!);

const header = section('2.1 ');
const published = section('2.2 ');
const slot = section('2.3 ');
const metaWrites = section('2.4 ');
const allRows = wordTables.flatMap(rowsOf);
const row = (name: string): WordRow => allRows.find((r) => r.name === name)!;

/** Slot-field constants: every SLOT_* export but the slot array's own dimensions. */
const SLOT_DIMENSIONS = ['SLOT_WORDS', 'SLOT_COUNT'];

describe('spec/concurrency_v0.md §2 word tables', () => {
  it('are found: header, published block, reader slots, meta writes', () => {
    expect(wordTables.map((t) => t.section).slice(0, 4)).toEqual(['2.1 Header', '2.2 Published block (seqlock)', '2.3 Reader slots', '2.4 Meta writes']);
  });

  it.each(allRows.map((r) => [r.name, r.word, r.line] as const))('names %s at word %s (spec line %i), which the code exports with that value', (name, word, line) => {
    expect(name in exported, `spec line ${line} names ${name}, which ts/shared/layout.ts does not export`).toBe(true);
    expect(exported[name], `${name} (spec line ${line})`).toBe(word);
  });

  it('covers every word constant the code exports (W_*, and the slot fields SLOT_*)', () => {
    const named = new Set(allRows.map((r) => r.name));
    const words = Object.keys(exported).filter((k) => k.startsWith('W_') || (k.startsWith('SLOT_') && !SLOT_DIMENSIONS.includes(k)));
    expect(words.filter((k) => !named.has(k))).toEqual([]);
  });

  it('lists each table’s words back to back, and no word twice', () => {
    for (const rows of [header, published, slot]) {
      for (let i = 0; i + 1 < rows.length; i++) expect(rows[i + 1]!.word, `spec line ${rows[i + 1]!.line}`).toBe(rows[i]!.word + 1);
    }
    const global = [...header, ...published, ...metaWrites].map((r) => r.word);
    expect(new Set(global).size, 'header, published block and meta-writes words overlap').toBe(global.length);
    expect(Math.max(...global), 'the global words end before the reader slots').toBeLessThan(layout.SLOTS_FIRST_WORD);
  });

  it('header (§2.1): magic and version as the code writes them', () => {
    expect(header[0]!.word).toBe(0);
    const magic = row('W_MAGIC').field;
    expect(Number(/`(0x[0-9A-Fa-f]+)`/.exec(magic)?.[1]), `spec line ${row('W_MAGIC').line}`).toBe(layout.LOCK_MAGIC);
    expect(magic).toContain('("NSLK")');
    expect(Buffer.from('NSLK', 'latin1').readUInt32BE(0)).toBe(layout.LOCK_MAGIC);
    expect(row('W_VERSION').field).toBe(String(layout.LOCK_VERSION));
  });

  it('published block (§2.2): W_SEQ, then the PUBLISHED_WORDS words from PUBLISHED_FIRST = W_TXN, ending at W_WRITER', () => {
    expect(published[0]!.name).toBe('W_SEQ');
    const block = published.slice(1);
    expect(block[0]!.name).toBe('W_TXN');
    expect(layout.PUBLISHED_FIRST).toBe(layout.W_TXN);
    expect(block.length).toBe(layout.PUBLISHED_WORDS);
    expect(block.at(-1)!.name).toBe('W_WRITER');
    expect(spec).toContain(`store words ${layout.W_TXN} … ${layout.W_WRITER} in word order, the txn`);
    expect(spec).toContain(`\`storeMany\` from \`PUBLISHED_FIRST\` = \`W_TXN\`, \`PUBLISHED_WORDS\` = ${layout.PUBLISHED_WORDS} words`);
    expect(spec).toContain(`load words ${layout.W_TXN} … ${layout.W_WRITER}; load \`seq\` again`);
  });

  it('reader slots (§2.3): count, size and first word, flag bits, owner ids', () => {
    expect(slot.map((r) => r.word)).toEqual([...Array(layout.SLOT_WORDS).keys()]);
    const count = /([\d,]+) slots of (\d+) words from word (\d+):/.exec(spec);
    expect(count?.slice(1).map((n) => Number(n.replace(/,/g, '')))).toEqual([layout.SLOT_COUNT, layout.SLOT_WORDS, layout.SLOTS_FIRST_WORD]);
    expect(Number(/`<db>\.lock`: the table of §2, ([\d,]+) bytes/.exec(spec)?.[1]?.replace(/,/g, ''))).toBe(layout.LOCK_FILE_SIZE);
    expect(layout.LOCK_FILE_SIZE).toBe((layout.SLOTS_FIRST_WORD + layout.SLOT_COUNT * layout.SLOT_WORDS) * 8);

    const flags = row('SLOT_FLAGS').field;
    expect(Number(/bit (\d+) `FLAG_READY`/.exec(flags)?.[1])).toBe(Math.log2(layout.FLAG_READY));
    expect(Number(/bit (\d+) `FLAG_FALLBACK`/.exec(flags)?.[1])).toBe(Math.log2(layout.FLAG_FALLBACK));
    const scale = /`\(SLOT_OWNER mod 2\^(\d+)\) × (\d+) \+ flags`/.exec(flags);
    expect(2 ** Number(scale?.[1])).toBe(layout.OWNER_PID_SCALE);
    const owner = 123 * layout.OWNER_PID_SCALE + 2 * 4567 + layout.OWNER_FALLBACK;
    expect(layout.slotFlagsWord(owner, layout.FLAG_READY)).toBe((owner % layout.OWNER_PID_SCALE) * Number(scale?.[2]) + layout.FLAG_READY);

    const ownerField = row('SLOT_OWNER').field;
    expect(2 ** Number(/`pid × 2\^(\d+) \+ nonce`/.exec(ownerField)?.[1])).toBe(layout.OWNER_PID_SCALE);
    expect(Number(/`OWNER_FALLBACK` \((\d+):/.exec(ownerField)?.[1])).toBe(layout.OWNER_FALLBACK);
    expect(layout.ownerPid(owner)).toBe(123);
    expect(layout.ownerIsFallback(owner)).toBe(true);
  });

  it('meta writes (§2.4): one word outside the seqlock block', () => {
    expect(metaWrites.map((r) => r.name)).toEqual(['W_META_WRITES']);
    const w = layout.W_META_WRITES;
    expect(w < layout.W_SEQ || w >= layout.PUBLISHED_FIRST + layout.PUBLISHED_WORDS, 'W_META_WRITES inside the published block').toBe(true);
  });

  it('writer queue (§2.5): the ticket word, and entries of QUEUE_ENTRY_WORDS fields between the global words and the reader slots', () => {
    const tables = wordTables.filter((t) => t.section.startsWith('2.5 '));
    expect(tables.length, 'the ticket table and the entry table').toBe(2);
    const [ticket, entry] = tables.map(rowsOf) as [WordRow[], WordRow[]];
    expect(ticket.map((r) => r.name)).toEqual(['W_QUEUE_TICKET']);
    const global = [...header, ...published, ...metaWrites, ...ticket].map((r) => r.word);
    expect(new Set(global).size, 'the queue ticket word overlaps another global word').toBe(global.length);
    expect(Math.max(...global)).toBeLessThan(layout.QUEUE_FIRST_WORD);
    expect(entry.map((r) => r.word)).toEqual([...Array(layout.QUEUE_ENTRY_WORDS).keys()]);
    expect(entry.map((r) => r.name)).toEqual(['QUEUE_OWNER', 'QUEUE_TICKET', 'QUEUE_HEARTBEAT']);
    const dims = /(\d+) entries \(`QUEUE_ENTRIES`\) of (\d+) words from word (\d+) \(`QUEUE_FIRST_WORD`\)/.exec(spec);
    expect(dims?.slice(1).map(Number)).toEqual([layout.QUEUE_ENTRIES, layout.QUEUE_ENTRY_WORDS, layout.QUEUE_FIRST_WORD]);
    expect(layout.queueWord(layout.QUEUE_ENTRIES - 1, layout.QUEUE_HEARTBEAT)).toBeLessThan(layout.SLOTS_FIRST_WORD);
    expect(spec).toContain(`\`QUEUE_STALE_MS\` (${layout.QUEUE_STALE_MS / 1000} s)`);
    expect(spec).toContain(`\`QUEUE_ABANDONED_MS\` (${layout.QUEUE_ABANDONED_MS / 1000} s;`);
    const named = new Set(allRows.map((r) => r.name));
    const queueFields = Object.keys(exported).filter((k) => k.startsWith('QUEUE_') && typeof exported[k] === 'number');
    const dimensions = ['QUEUE_FIRST_WORD', 'QUEUE_ENTRY_WORDS', 'QUEUE_ENTRIES', 'QUEUE_STALE_MS', 'QUEUE_ABANDONED_MS'];
    expect(queueFields.filter((k) => !named.has(k) && !dimensions.includes(k))).toEqual([]);
  });
});
