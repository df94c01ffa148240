// `northstar cartridge build|inspect|verify` (ts/cli/cartridge.ts) in process:
// each verb, its JSON form and exit codes, and that --out never replaces a
// file that is not a cartridge.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import { openQueue } from '../index.js';
import { useTempDbs } from '../testing/fixtures.js';
import { runCli } from './program.js';

const tmp = useTempDbs('northstar-cli-cartridge-');

function cli(...args: string[]): { code: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** A closed database: queue 'work' with 2 ready 'build' tasks (priorities 0 and 5) and 1 ready 'test'; one 'test' claimed. */
async function fixture(name = 'db'): Promise<string> {
  const db = tmp.openDb({}, name);
  const q = openQueue(db, 'work');
  await q.enqueue([{ type: 'build' }, { type: 'build', priority: 5 }, { type: 'test' }, { type: 'test' }]);
  await q.claim({ worker: 'a', types: ['test'] });
  await q.close();
  db.close();
  return tmp.dbPath(name);
}

describe('northstar cartridge', () => {
  it('build writes <db>.pending_tasks_by_type.cartridge from the log; inspect lists groups in claim order; verify --db proves it exact', async () => {
    const db = await fixture();
    const b = cli('cartridge', 'build', db, '--json');
    expect(b.code).toBe(0);
    const built = JSON.parse(b.out[0]!) as { file: string; txnId: number; groups: number; entries: number };
    expect(built).toMatchObject({ file: `${db}.pending_tasks_by_type.cartridge`, txnId: 2, groups: 2, entries: 3 });
    const i = cli('cartridge', 'inspect', built.file, '--json', '--entries', '5');
    expect(i.code).toBe(0);
    const inspected = JSON.parse(i.out[0]!) as { groups: { queue: string; type: string; count: number; first: { id: number; priority: number }[] }[] };
    expect(inspected.groups.map((g) => [g.queue, g.type, g.count, g.first.map((e) => e.id)])).toEqual([
      ['work', 'build', 2, [2, 1]], // priority 5 first
      ['work', 'test', 1, [4]],
    ]);
    expect(cli('cartridge', 'inspect', built.file).out.some((l) => /work\s+build\s+2/.test(l))).toBe(true);
    const v = cli('cartridge', 'verify', built.file, '--db', db);
    expect(v.code).toBe(0);
    expect(v.out[0]).toContain('equal to a build of');
  });

  it('verify fails (exit 1) for a cartridge of another database, and for a damaged file, with one line', async () => {
    const db = await fixture();
    const other = await fixture('other');
    expect(cli('cartridge', 'build', db).code).toBe(0);
    const file = `${db}.pending_tasks_by_type.cartridge`;
    const v = cli('cartridge', 'verify', file, '--db', other, '--json');
    expect(v.code).toBe(1);
    expect((JSON.parse(v.out[0]!) as { problems: string[] }).problems[0]).toContain('not');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 20]! ^= 0x10;
    fs.writeFileSync(file, bytes);
    const d = cli('cartridge', 'verify', file);
    expect(d.code).toBe(1);
    expect(d.err).toEqual([expect.stringMatching(/check 2 failed: checksum mismatch \[Corrupt\]$/)]);
  });

  it("build --at an earlier txn, --out a file of one's choosing, and never onto a file that is not a cartridge", async () => {
    const db = await fixture();
    const out = nodePath.join(tmp.dir, 'at1.cartridge');
    expect(JSON.parse(cli('cartridge', 'build', db, '--at', '1', '--out', out, '--json').out[0]!)).toMatchObject({ txnId: 1, entries: 4 });
    const before = fs.readFileSync(db);
    const r = cli('cartridge', 'build', db, '--out', db);
    expect(r.code).toBe(1);
    expect(r.err[0]).toContain('is not a cartridge');
    expect(Buffer.compare(fs.readFileSync(db), before)).toBe(0);
    expect(cli('cartridge', 'build', db, '--at', '9').code).toBe(1);
    // --base: the earlier cartridge plus the commits since, byte-identical to a full build.
    const inc = nodePath.join(tmp.dir, 'inc.cartridge');
    expect(cli('cartridge', 'build', db, '--base', out, '--out', inc).code).toBe(0);
    expect(cli('cartridge', 'build', db).code).toBe(0);
    expect(Buffer.compare(fs.readFileSync(inc), fs.readFileSync(`${db}.pending_tasks_by_type.cartridge`))).toBe(0);
    const other = await fixture('other');
    const wrong = cli('cartridge', 'build', other, '--base', out, '--out', nodePath.join(tmp.dir, 'x.cartridge'));
    expect(wrong.code).toBe(1);
    expect(wrong.err[0]).toContain('UnsupportedFormat');
  });
});
