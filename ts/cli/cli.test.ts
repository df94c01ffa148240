// The `northstar` tool (ts/cli/*.ts) against databases made through the
// library. Most tests run the tool in process (runCli with captured output, on
// this project's kernels); the last group spawns the built binary
// dist/cli/main.js, compiling it first when dist/ is older than the source.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { open, stateHashOf } from '../index.js';
import { PageType, TYPE_OFFSET } from '../format/constants.js';
import { LOG_PREALLOC_BYTES, LogFile } from '../log/file.js';
import { RecordBuilder } from '../log/record.js';
import { kernels } from '../native/kernels.js';
import { benchCommand } from './bench.js';
import { runCli } from './program.js';
import { ensureBuilt, mainJs } from '../testing/build.js';

const PAGE_SIZE = 4096;

let dir: string;
let dbPath: string;

beforeEach(() => {
  dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-cli-'));
  dbPath = nodePath.join(dir, 'test.db');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string[];
  err: string[];
}

function cli(...args: string[]): Run {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, [benchCommand]);
  return { code, out, err };
}

/** Three commits: text keys, a binary key, a value with tab and newline, a delete. */
function makeDb(path = dbPath): void {
  // sync 'full': mid-log damage is then Corrupt, not a torn group commit (spec/commit_record_v0.md §7, rule 3a).
  const db = open(path, { sync: 'full', pageSize: PAGE_SIZE });
  try {
    let w = db.beginWrite();
    for (let i = 0; i < 5; i++) w.put(`a/${i}`, `value ${i}`);
    w.commit();
    w = db.beginWrite();
    w.put(Buffer.from([0xff, 0x00, 0x5c]), 'tab\there\nnewline');
    w.put('b/1', 'héllo');
    w.commit();
    w = db.beginWrite();
    w.del('a/0');
    w.put('b/2', Buffer.from([1, 2, 3]));
    w.commit();
  } finally {
    db.close();
  }
}

/** Positions of the log's records. */
function recordPositions(logPath = `${dbPath}.log`): number[] {
  const log = LogFile.open(logPath, null, kernels);
  try {
    const out: number[] = [];
    for (const r of log.scan(log.base)) out.push(r.position);
    return out;
  } finally {
    log.close();
  }
}

/** Flips one byte of a file. */
function flipByte(path: string, offset: number): void {
  const fd = fs.openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0x5a;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

const oneLineError = (r: { code: number; err: string[] }): void => {
  expect(r.code).not.toBe(0);
  expect(r.err).toHaveLength(1);
  expect(r.err[0]).toMatch(/^northstar: \S/);
  expect(r.err.join('\n')).not.toMatch(/\n\s+at /);
};

/** A new log `<dbPath>.log` of database id 7 and a builder holding txn 1's put of k = v, to seal and append. */
function logWithOnePut(): { logPath: string; log: LogFile; b: RecordBuilder } {
  const logPath = `${dbPath}.log`;
  const log = LogFile.create(logPath, 7, kernels);
  const b = new RecordBuilder();
  b.reset(1);
  b.put(Buffer.from('k'), Buffer.from('v'));
  return { logPath, log, b };
}

describe('logdump', () => {
  it('lists one line per record with position, txn, type, op count, bytes and pages section', () => {
    makeDb();
    const positions = recordPositions();
    const r = cli('logdump', dbPath);
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(/^position\s+txn\s+type\s+ops\s+bytes\s+pages$/);
    expect(r.out.slice(1, 4).map((l) => l.split(/\s+/).slice(0, 5))).toEqual([
      [String(positions[0]), '1', 'commit', '5', expect.stringMatching(/^\d+$/)],
      [String(positions[1]), '2', 'commit', '2', expect.stringMatching(/^\d+$/)],
      [String(positions[2]), '3', 'commit', '2', expect.stringMatching(/^\d+$/)],
    ]);
    expect(r.out[4]).toMatch(/^3 records, clean end at position \d+$/);
    // The log path itself works too.
    expect(cli('logdump', `${dbPath}.log`).out).toEqual(r.out);
  });

  it('--json prints one object per record and one for the end; --from starts at a position', () => {
    makeDb();
    const positions = recordPositions();
    const r = cli('logdump', dbPath, '--json');
    expect(r.code).toBe(0);
    const lines = r.out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ position: positions[0], txnId: 1, type: 'commit', ops: 5, bytes: positions[1]! - positions[0]!, prevPosition: positions[0] });
    expect(Object.keys(lines[0]!).filter((k) => k !== 'pages')).toEqual(['position', 'txnId', 'type', 'ops', 'bytes', 'prevPosition']);
    expect(lines[2]).toMatchObject({ position: positions[2], txnId: 3, prevPosition: positions[1] });
    expect(lines[3]).toEqual({ end: 'end', position: expect.any(Number), records: 3, problems: [] });
    const from = cli('logdump', dbPath, '--json', '--from', String(positions[1]));
    expect(from.out.map((l) => JSON.parse(l).txnId ?? 'end')).toEqual([2, 3, 'end']);
  });

  it('--verify stops at a damaged record, names its position and fails', () => {
    makeDb();
    const positions = recordPositions();
    flipByte(`${dbPath}.log`, positions[1]! + 50); // a new log's base is 32: file offset = position
    const r = cli('logdump', dbPath, '--verify');
    expect(r.code).toBe(1);
    expect(r.out.at(-1)).toContain(`damaged record at position ${positions[1]}`);
    expect(r.out.filter((l) => /^\d+\s+\d+\s+commit/.test(l))).toHaveLength(1);
    // Damage followed by valid records fails without --verify too.
    expect(cli('logdump', dbPath).code).toBe(1);
  });

  it('a torn tail passes a plain dump but fails --verify with its position', () => {
    makeDb();
    const positions = recordPositions();
    fs.truncateSync(`${dbPath}.log`, positions[2]! + 20);
    const plain = cli('logdump', dbPath);
    expect(plain.code).toBe(0);
    expect(plain.out.at(-1)).toContain(`torn tail at position ${positions[2]}`);
    const v = cli('logdump', dbPath, '--verify');
    expect(v.code).toBe(1);
    expect(v.out.at(-1)).toContain(`torn tail at position ${positions[2]}`);
  });

  it('zeros from the last record to the end of the file (space a live writer preallocated) are a clean end, also for --verify', () => {
    const { logPath, log, b } = logWithOnePut();
    log.append(b.seal(log.end, 3, kernels));
    const end = log.end;
    log.close(); // no trim: as a writer that is still open, or was killed, leaves it
    const zeros = fs.statSync(logPath).size - end;
    expect(zeros).toBe(LOG_PREALLOC_BYTES);
    const v = cli('logdump', logPath, '--verify');
    expect(v.code).toBe(0);
    expect(v.out.at(-1)).toBe(`1 record, clean end at position ${end}, then ${zeros} bytes of preallocated zeros`);
    expect(JSON.parse(cli('logdump', logPath, '--json').out.at(-1)!)).toEqual({ end: 'end', position: end, records: 1, preallocated: zeros, problems: [] });
    // A byte that is not zero in that tail makes it a torn tail again.
    flipByte(logPath, end + 1000);
    expect(cli('logdump', logPath, '--verify').out.at(-1)).toContain(`torn tail at position ${end}`);
  });

  it('shows a commit’s pages section: counts in the table and JSON, ids with --ids', () => {
    const { logPath, log, b } = logWithOnePut();
    const first = log.append(b.seal(log.end, 3, kernels, 0, { pageCount: 12, entryCount: 1, depth: 1, written: [3, 4], freed: [2], freedYoung: [] }));
    b.reset(2);
    log.append(b.seal(first, 3, kernels));
    log.close();
    const r = cli('logdump', logPath);
    expect(r.code).toBe(0);
    expect(r.out[1]).toMatch(/\s1\s+commit\s+1\s+\d+\s+12 pages, 1 entries, depth 1; written 2, freed 1, freed young 0$/);
    expect(r.out[2]).toMatch(/\s2\s+commit\s+0\s+\d+\s+-$/);
    const ids = cli('logdump', logPath, '--ids');
    expect(ids.out.slice(1, 6).map((l) => l.trim())).toEqual([r.out[1], 'written: 3 4', 'freed: 2', 'freed young:', r.out[2]]);
    const json = cli('logdump', logPath, '--json').out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json[0]!.pages).toEqual({ pageCount: 12, entryCount: 1, depth: 1, written: 2, freed: 1, freedYoung: 0 });
    expect(json[1]!.pages).toBeUndefined();
    const jsonIds = JSON.parse(cli('logdump', logPath, '--json', '--ids').out[0]!) as Record<string, unknown>;
    expect(jsonIds.pages).toMatchObject({ writtenIds: [3, 4], freedIds: [2], freedYoungIds: [] });
  });

  it('works when the data file will not open', () => {
    makeDb();
    fs.writeFileSync(dbPath, 'not a database');
    expect(cli('dump', dbPath).code).toBe(1);
    const r = cli('logdump', dbPath);
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(5);
  });
});

describe('verify', () => {
  it('reports every check and 0 problems on a sound database', () => {
    makeDb();
    const r = cli('verify', dbPath);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.out.map((l) => l.split(/\s+/)[0])).toEqual(['log', 'open', 'tree', 'log/meta', '0']);
    expect(r.out.at(-1)).toBe('0 problems found');
  });

  it('finds a flipped byte in a leaf page, naming the page', () => {
    const db = open(dbPath, { sync: 'full', pageSize: PAGE_SIZE });
    const w = db.beginWrite();
    for (let i = 0; i < 20; i++) w.put(`key${i}`, `value${i}`);
    w.commit();
    db.close();
    const file = fs.readFileSync(dbPath);
    const leaves: number[] = [];
    for (let id = 2; id * PAGE_SIZE < file.length; id++) if (file[id * PAGE_SIZE + TYPE_OFFSET] === PageType.Leaf) leaves.push(id);
    expect(leaves).toHaveLength(1); // one commit: the root is the only leaf
    flipByte(dbPath, leaves[0]! * PAGE_SIZE + 100);
    const r = cli('verify', dbPath);
    expect(r.code).toBe(1);
    expect(r.out.at(-1)).toMatch(/^[1-9]\d* problems found$/);
    expect(r.out.some((l) => l.startsWith(`tree\tpage ${leaves[0]}\t`))).toBe(true);
  });

  it('finds damage in the log before the checkpoint, which open does not read', () => {
    makeDb();
    flipByte(`${dbPath}.log`, recordPositions()[0]! + 50);
    const r = cli('verify', dbPath);
    expect(r.code).toBe(1);
    expect(r.out.some((l) => l.startsWith('log\tposition ') && l.includes('damaged'))).toBe(true);
    expect(r.out.at(-1)).toMatch(/^[1-9]\d* problems found$/);
  });

  it('says open failed, with a one-line error, when the database will not open', () => {
    makeDb();
    fs.writeFileSync(dbPath, Buffer.alloc(100));
    const r = cli('verify', dbPath);
    oneLineError(r);
    expect(r.code).toBe(1);
    expect(r.out.some((l) => /^open\s+FAILED/.test(l))).toBe(true);
    expect(r.out.at(-1)).toMatch(/problems found$/);
  });

  it('heals a torn tail: open cuts it off, so every check passes', () => {
    makeDb();
    const logPath = `${dbPath}.log`;
    const size = fs.statSync(logPath).size;
    // A crash in the middle of the next append: the first 60 bytes of a record.
    fs.appendFileSync(logPath, fs.readFileSync(logPath).subarray(recordPositions()[0]!, recordPositions()[0]! + 60));
    const r = cli('verify', dbPath);
    expect(r.code).toBe(0);
    expect(r.out[0]).toContain(`torn at position ${size}`);
    expect(fs.statSync(logPath).size).toBe(size);
  });
});

describe('dump', () => {
  it('prints key<TAB>value in key order with bytes escaped', () => {
    makeDb();
    const r = cli('dump', dbPath);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([
      'a/1\tvalue 1',
      'a/2\tvalue 2',
      'a/3\tvalue 3',
      'a/4\tvalue 4',
      'b/1\th\\xc3\\xa9llo',
      'b/2\t\\x01\\x02\\x03',
      '\\xff\\x00\\\\\ttab\\there\\nnewline',
    ]);
    expect(cli('dump', dbPath, '--prefix', 'b/').out).toEqual(['b/1\th\\xc3\\xa9llo', 'b/2\t\\x01\\x02\\x03']);
  });

  it('--txn reads a retained snapshot; --json gives text fields for UTF-8 and base64 fields otherwise', () => {
    makeDb();
    const r = cli('dump', dbPath, '--txn', '1', '--json');
    expect(r.code).toBe(0);
    expect(r.out.map((l) => JSON.parse(l))).toEqual([0, 1, 2, 3, 4].map((i) => ({ key: `a/${i}`, value: `value ${i}` })));
    const all = cli('dump', dbPath, '--json').out.map((l) => JSON.parse(l) as Record<string, string>);
    expect(all.at(-2)).toEqual({ key: 'b/2', value: '\u0001\u0002\u0003' });
    expect(all.at(-1)).toEqual({ keyBase64: Buffer.from([0xff, 0x00, 0x5c]).toString('base64'), value: 'tab\there\nnewline' });
  });

  it('a snapshot that is not retained is a one-line error', () => {
    makeDb();
    const r = cli('dump', dbPath, '--txn', '99');
    oneLineError(r);
    expect(r.err[0]).toContain('SnapshotNotFound');
  });
});

describe('replay', () => {
  it('summarises the log; --hash equals the hash of the database snapshot', () => {
    makeDb();
    const r = cli('replay', dbPath, '--hash');
    expect(r.code).toBe(0);
    const db = open(dbPath);
    let hash: string;
    try {
      const txn = db.beginRead();
      hash = stateHashOf(txn.scan());
      txn.close();
    } finally {
      db.close();
    }
    expect(r.out).toEqual(['txn       3', 'commits   3', 'ops       9', 'entries   7', `hash      ${hash}`]);
    expect(JSON.parse(cli('replay', dbPath, '--to', '2', '--json').out[0]!)).toEqual({ txnId: 2, commits: 2, ops: 7, entries: 7 });
  });

  it('--explain prints every applied op with the running state hash', () => {
    makeDb();
    const r = cli('replay', dbPath, '--explain');
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(9);
    expect(r.out[0]).toMatch(/^1\tput\ta\/0\tvalue 0\t[0-9a-f]{16}$/);
    expect(r.out[7]).toMatch(/^3\tdel\ta\/0\t\t[0-9a-f]{16}$/);
    const last = cli('replay', dbPath, '--hash').out.at(-1)!.split(/\s+/)[1];
    expect(r.out[8]!.split('\t')[4]).toBe(last);
    const json = cli('replay', dbPath, '--explain', '--json', '--to', '1').out.map((l) => JSON.parse(l));
    expect(json[0]).toEqual({ txnId: 1, op: 'put', key: 'a/0', value: 'value 0', stateHash: expect.stringMatching(/^[0-9a-f]{16}$/) });
  });

  it('a damaged record followed by valid ones is a one-line error', () => {
    makeDb();
    flipByte(`${dbPath}.log`, recordPositions()[1]! + 50);
    const r = cli('replay', dbPath);
    oneLineError(r);
    expect(r.err[0]).toContain('Corrupt');
  });
});

describe('stats', () => {
  it('prints a table, and db.stats() with --json', () => {
    makeDb();
    const r = cli('stats', dbPath);
    expect(r.code).toBe(0);
    const rows = new Map(r.out.map((l) => [l.slice(0, 16).trim(), l.slice(16)]));
    expect(rows.get('page size')).toBe(String(PAGE_SIZE));
    expect(rows.get('txn id')).toBe('3');
    expect(rows.get('entries')).toBe('7');
    expect(rows.get('checkpoint')).toMatch(/^txn 3,/);
    for (const k of ['pages', 'tree depth', 'free pages', 'pending pages', 'file size', 'log size', 'history']) expect(rows.has(k)).toBe(true);
    const j = JSON.parse(cli('stats', dbPath, '--json').out[0]!);
    expect(j).toMatchObject({ txnId: 3, entries: 7, pageSize: PAGE_SIZE, depth: 1, checkpoint: { txnId: 3 }, history: { retained: expect.any(Number) } });
    for (const k of ['pageCount', 'freePages', 'pendingPages', 'fileSize', 'logSize']) expect(typeof j[k]).toBe('number');
  });
});

describe('bench capture-baseline', () => {
  it('refuses to replace a directory that is not a baseline (spec/file_format_v1.md §8.6), touching nothing in it', () => {
    const target = nodePath.join(dir, 'baselines', 'ci');
    fs.mkdirSync(target, { recursive: true });
    fs.writeFileSync(nodePath.join(target, 'notes.txt'), 'keep me');
    const r = cli('bench', 'capture-baseline', '--dir', nodePath.join(dir, 'baselines'), '--profile', 'ci', '--filter', 'nothing-matches-this');
    oneLineError(r);
    expect(r.err[0]).toContain('not a benchmark baseline');
    expect(fs.readdirSync(target)).toEqual(['notes.txt']);
    // A results tree without summary.json is refused too.
    fs.rmSync(nodePath.join(target, 'notes.txt'));
    fs.mkdirSync(nodePath.join(target, 'micro'));
    fs.writeFileSync(nodePath.join(target, 'micro', 'x.json'), '{}');
    oneLineError(cli('bench', 'capture-baseline', '--dir', nodePath.join(dir, 'baselines'), '--profile', 'ci', '--filter', 'nothing-matches-this'));
    expect(fs.readdirSync(nodePath.join(target, 'micro'))).toEqual(['x.json']);
  });
});

describe('errors and help', () => {
  it.each(['logdump', 'verify', 'dump', 'replay', 'stats'])('%s on a missing path: one-line error, non-zero, nothing created', (cmd) => {
    const missing = nodePath.join(dir, 'missing.db');
    const r = cli(cmd, missing);
    oneLineError(r);
    expect(r.err[0]).toContain('missing.db');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a directory and a bad option are one-line errors', () => {
    oneLineError(cli('stats', dir));
    const bad = cli('logdump', dbPath, '--from', 'x');
    oneLineError(bad);
    expect(bad.code).toBe(2);
    expect(cli('nosuch').code).toBe(2);
  });

  it.each(['logdump', 'verify', 'dump', 'replay', 'stats'])('%s --help exits 0', (cmd) => {
    const r = cli(cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(new RegExp(`^Usage: northstar ${cmd} `));
  });
});

// ---- the built binary ---------------------------------------------------------------

function spawnCli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  // NORTHSTAR_QUIET: where the addon is not built, the package's one fallback line would join the CLI's own stderr.
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', env: { ...process.env, NORTHSTAR_DEBUG: '', NORTHSTAR_QUIET: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the built binary', () => {
  beforeAll(ensureBuilt, 120_000);

  it('keeps its shebang and is executable', () => {
    expect(fs.readFileSync(mainJs, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(fs.statSync(mainJs).mode & 0o111).not.toBe(0);
  });

  it('--help exits 0 and lists every command', () => {
    const r = spawnCli('--help');
    expect(r.code).toBe(0);
    for (const c of ['logdump', 'verify', 'dump', 'replay', 'stats']) expect(r.stdout).toContain(`  ${c} `);
  });

  it('runs verify, dump --json and stats --json on a database', () => {
    makeDb();
    const v = spawnCli('verify', dbPath);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/\n0 problems found\n$/);
    const d = spawnCli('dump', dbPath, '--json', '--prefix', 'a/');
    expect(d.code).toBe(0);
    expect(d.stdout.trim().split('\n').map((l) => JSON.parse(l).key)).toEqual(['a/1', 'a/2', 'a/3', 'a/4']);
    const s = spawnCli('stats', dbPath, '--json');
    expect(JSON.parse(s.stdout)).toMatchObject({ txnId: 3 });
  });

  it('a missing path prints one line on stderr and exits non-zero', () => {
    const r = spawnCli('dump', nodePath.join(dir, 'nope.db'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^northstar: .*nope\.db.*\n$/);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('logdump --verify exits 1 on a damaged record and names its position', () => {
    makeDb();
    const positions = recordPositions();
    flipByte(`${dbPath}.log`, positions[1]! + 50);
    const r = spawnCli('logdump', dbPath, '--verify');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`damaged record at position ${positions[1]}`);
  });
});
