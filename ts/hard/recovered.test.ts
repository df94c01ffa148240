// The crash suites' recovery check (ts/hard/recovered.ts) passes a sound copy
// and names each kind of damage it exists to catch.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { expect, it } from 'vitest';
import { open } from '../db/index.js';
import { stateHashOf } from '../log/replay.js';
import { useTempDbs } from '../testing/fixtures.js';
import { checkRecoveredCopy, CrashLedger, type RecoveryCheck, type RecoveryCounts } from './recovered.js';

const tmp = useTempDbs('northstar-recovered-');

function counts(): RecoveryCounts {
  return { killedBeforeCreated: 0, lostCommits: 0, phantomCommits: 0, stateMismatches: 0, timeTravelChecks: 0, timeTravelMismatches: 0, replayChecks: 0, replayMismatches: 0, replaySkippedAfterTruncateLog: 0, verifyProblems: 0 };
}

/** A database of 6 commits and the state hash after each. */
function sixCommits(): { path: string; hashes: string[] } {
  const path = tmp.dbPath();
  const db = open(path, { pageSize: 4096, history: { txns: 100 } });
  const hashes = [stateHashOf([])];
  for (let t = 1; t <= 6; t++) {
    const w = db.beginWrite();
    w.put(`k${t}`, `v${t}`);
    if (t > 2) w.del(`k${t - 2}`);
    w.commit();
    const r = db.beginRead();
    hashes.push(stateHashOf(r.scan()));
    r.close();
  }
  db.close();
  return { path, hashes };
}

function check(path: string, over: Partial<RecoveryCheck>): RecoveryCheck & { recovered: number } {
  const c: RecoveryCheck = {
    dbPath: path,
    copyPath: nodePath.join(tmp.dir, 'copy'),
    pageSize: 4096,
    historyTxns: 100,
    lastAcked: 6,
    lastAttempted: 6,
    truncated: false,
    hash: () => undefined,
    rand: (n) => Math.floor(n / 2),
    counts: counts(),
    problems: [],
    recoveryMs: [],
    ...over,
  };
  return { ...c, recovered: checkRecoveredCopy(c) };
}

it('a sound copy passes, with time travel and replay checked', () => {
  const { path, hashes } = sixCommits();
  const c = check(path, { hash: (t) => hashes[t] });
  expect(c.problems).toEqual([]);
  expect(c.recovered).toBe(6);
  expect(c.counts.timeTravelChecks).toBeGreaterThanOrEqual(2);
  expect(c.counts.replayChecks).toBe(1);
  expect(c.recoveryMs).toHaveLength(1);
});

it('names lost and phantom commits, a wrong state and wrong snapshots', () => {
  const { path, hashes } = sixCommits();
  const lost = check(path, { hash: (t) => hashes[t], lastAcked: 8, lastAttempted: 8 });
  expect(lost.counts.lostCommits).toBe(2);
  expect(lost.problems.join('; ')).toContain('but 8 was acknowledged');
  const phantom = check(path, { hash: (t) => hashes[t], lastAcked: 4, lastAttempted: 5 });
  expect(phantom.counts.phantomCommits).toBe(1);
  const wrong = check(path, { hash: (t) => (t === 6 ? 'other' : t === 3 ? 'other' : hashes[t]), rand: () => 0 });
  expect(wrong.counts.stateMismatches).toBe(1);
  expect(wrong.problems.join('; ')).toContain("the model's other");
  const badSnapshots = check(path, { hash: (t) => (t === 6 ? hashes[t] : 'other') });
  expect(badSnapshots.counts.timeTravelMismatches).toBe(badSnapshots.counts.timeTravelChecks);
  expect(badSnapshots.counts.timeTravelMismatches).toBeGreaterThan(0);
});

it('a missing data file or log is named; a missing data file with nothing acknowledged is txn 0', () => {
  const none = check(nodePath.join(tmp.dir, 'absent'), { lastAcked: 0 });
  expect([none.recovered, none.problems, none.counts.killedBeforeCreated]).toEqual([0, [], 1]);
  const lost = check(nodePath.join(tmp.dir, 'absent'), { lastAcked: 3 });
  expect(lost.recovered).toBe(-1);
  expect(lost.problems[0]).toContain('missing, 3 was acknowledged');
  const { path } = sixCommits();
  fs.rmSync(`${path}.log`);
  expect(check(path, {}).problems).toEqual(['the data file exists without its log']);
});

it('CrashLedger books failed cycles: counts, logs, and keeps the one with the fewest commits attempted', () => {
  const fig = { ...counts(), failures: 0 };
  const lines: string[] = [];
  const ledger = new CrashLedger(fig, (l) => lines.push(l));
  expect(ledger.failed('cycle 1', [], 5)).toBe(false);
  expect(ledger.failed('cycle 2', ['lost txn 9'], 9)).toBe(true);
  expect(ledger.failed('cycle 3', ['a', 'b'], 4)).toBe(true);
  expect(ledger.failed('cycle 4', ['c'], 7)).toBe(true);
  expect(fig.failures).toBe(3);
  expect(lines).toEqual(['FAIL cycle 2: lost txn 9', 'FAIL cycle 3: a; b', 'FAIL cycle 4: c']);
  ledger.byFailpoint.beforeLogSync! += 2;
  ledger.recoveryMs.push(1, 3, 2);
  const f = ledger.figures();
  expect(f).toMatchObject({ failures: 3, smallestMismatch: 'cycle 3: a; b', 'killsAt.beforeLogSync': 2, 'killsAt.afterLogSync': 0 });
  expect(ledger.recoveryP50()).toBe(2);
});
