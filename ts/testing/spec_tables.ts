// Markdown tables of the specs in spec/, for the tests that check the code's
// constants against them (ts/format/constants.test.ts, ts/format/record.test.ts).

import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface SpecTable {
  /** Heading of the section the table is in, e.g. "2.1 Layout". */
  section: string;
  header: string[];
  rows: { line: number; cells: string[] }[];
}

/** The text of spec/<name>. */
export function readSpec(name: string): string {
  return fs.readFileSync(fileURLToPath(new URL(`../../spec/${name}`, import.meta.url)), 'utf8');
}

/** Every markdown table in the text, with the section it belongs to. */
export function parseTables(text: string): SpecTable[] {
  const tables: SpecTable[] = [];
  let section = '';
  let current: SpecTable | null = null;
  const split = (line: string): string[] => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
  text.split('\n').forEach((line, i) => {
    const heading = /^#+\s+(.*)$/.exec(line);
    if (heading) section = heading[1]!;
    if (!line.trim().startsWith('|')) {
      current = null;
      return;
    }
    if (current === null) {
      current = { section, header: split(line), rows: [] };
      tables.push(current);
      return;
    }
    if (/^\|[\s|:-]+\|$/.test(line.trim())) return; // the |---|---| rule
    current.rows.push({ line: i + 1, cells: split(line) });
  });
  return tables;
}

/** Tables whose header is exactly these columns (case-insensitive). */
export function tablesWithHeader(tables: readonly SpecTable[], ...columns: string[]): SpecTable[] {
  const want = columns.join('|').toLowerCase();
  return tables.filter((t) => t.header.join('|').toLowerCase() === want);
}
