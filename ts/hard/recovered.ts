// The check both crash suites (crash.ts, crashmulti.ts) run after every kill:
// recover a copy of the killed run's files and hold it against what the
// children acknowledged and attempted and against the model (spec
// file_format_v1.md §8, concurrency_v0.md §5.1).

import * as fs from 'node:fs';
import { open } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { FAILPOINTS } from '../io/failpoint.js';
import { replay, stateHashOf } from '../log/replay.js';
import type { Figures } from './registry.js';
import { percentile } from './workload.js';

/** The geometry both crash suites open their databases with (children and recovered copies alike). */
export const CRASH_PAGE_SIZE = 4096;
export const CRASH_HISTORY_TXNS = 30;

/** The figures the check counts into. */
export interface RecoveryCounts {
  killedBeforeCreated: number;
  lostCommits: number;
  phantomCommits: number;
  stateMismatches: number;
  timeTravelChecks: number;
  timeTravelMismatches: number;
  replayChecks: number;
  replayMismatches: number;
  replaySkippedAfterTruncateLog: number;
  verifyProblems: number;
}

export interface RecoveryCheck {
  dbPath: string;
  /** Where the copy is recovered; the originals are left for the next cycle. */
  copyPath: string;
  pageSize: number;
  historyTxns: number;
  /** Highest txn a child saw acknowledged (at least the previous recovery's). */
  lastAcked: number;
  /** Highest txn a child tried to commit. */
  lastAttempted: number;
  /** A child truncated the log this cycle: replay from the log alone may lack the start. */
  truncated: boolean;
  /** The state hash the model gives for each txn id (undefined: none, which no state equals). */
  hash(txnId: number): string | undefined;
  rand(n: number): number;
  counts: RecoveryCounts;
  problems: string[];
  recoveryMs: number[];
}

/**
 * Recovers a copy and checks it: no acknowledged commit lost, none past the
 * attempted ones, the state and up to four retained snapshots equal the
 * model's, replaying the log alone reaches the same state, verify() is clean.
 * Each failed check adds to `problems`. Returns the recovered txn id, -1 when
 * nothing could be recovered.
 */
export function checkRecoveredCopy(c: RecoveryCheck): number {
  const { counts: fig, problems } = c;
  if (!fs.existsSync(c.dbPath)) {
    // Killed while creating the database: the data file appears last (spec §8.3), nothing was committed.
    fig.killedBeforeCreated++;
    if (c.lastAcked > 0) problems.push(`the database file is missing, ${c.lastAcked} was acknowledged`);
    return c.lastAcked > 0 ? -1 : 0;
  }
  if (!fs.existsSync(`${c.dbPath}.log`)) {
    problems.push('the data file exists without its log');
    return -1;
  }
  let recovered = -1;
  try {
    fs.copyFileSync(c.dbPath, c.copyPath);
    fs.copyFileSync(`${c.dbPath}.log`, `${c.copyPath}.log`);
    const t0 = performance.now();
    const db = open(c.copyPath, { pageSize: c.pageSize, history: { txns: c.historyTxns } });
    c.recoveryMs.push(performance.now() - t0);
    try {
      recovered = db.txnId;
      if (recovered < c.lastAcked) {
        fig.lostCommits += c.lastAcked - recovered;
        problems.push(`recovered txn ${recovered}, but ${c.lastAcked} was acknowledged`);
      }
      if (recovered > c.lastAttempted) {
        fig.phantomCommits += recovered - c.lastAttempted;
        problems.push(`recovered txn ${recovered}, but only up to ${c.lastAttempted} was tried`);
      }
      const rd = db.beginRead();
      const snapHash = stateHashOf(rd.scan());
      rd.close();
      if (snapHash !== c.hash(recovered)) {
        fig.stateMismatches++;
        problems.push(`state at txn ${recovered} is ${snapHash}, the model's ${c.hash(recovered)}`);
      }
      // Time travel over the retained history: its ends and two txns between.
      const oldest = db.stats().history.oldestTxnId;
      if (oldest !== null && oldest < recovered) {
        const picks = new Set([oldest, recovered - 1, oldest + c.rand(recovered - oldest), oldest + c.rand(recovered - oldest)]);
        for (const t of picks) {
          fig.timeTravelChecks++;
          let h: string;
          try {
            const r = db.beginRead({ txnId: t });
            h = stateHashOf(r.scan());
            r.close();
          } catch (err) {
            h = `error ${(err as Error).message}`;
          }
          if (h !== c.hash(t)) {
            fig.timeTravelMismatches++;
            problems.push(`time travel to txn ${t} (retained ${oldest}..${recovered}) gives ${h}, the model's ${c.hash(t)}`);
          }
        }
      }
      // §8: replaying the log alone reaches the same state.
      try {
        const rp = replay(c.copyPath);
        fig.replayChecks++;
        if (rp.txnId !== recovered || rp.stateHash !== snapHash) {
          fig.replayMismatches++;
          problems.push(`replay reaches txn ${rp.txnId} with state ${rp.stateHash}; the database is at ${recovered} with ${snapHash}`);
        }
      } catch (err) {
        if (c.truncated && err instanceof NorthstarError && err.code === 'SnapshotNotFound') fig.replaySkippedAfterTruncateLog++;
        else {
          fig.replayMismatches++;
          problems.push(`replay failed: ${(err as Error).message}`);
        }
      }
      const report = db.verify();
      if (!report.ok) {
        fig.verifyProblems += report.problems.length;
        problems.push(`verify: ${report.problems.length} problems, first ${JSON.stringify(report.problems[0])}`);
      }
    } finally {
      db.close();
    }
  } catch (err) {
    problems.push(`recovery failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return recovered;
}

/**
 * A crash suite's figures at the end: its counts, recovery time percentiles
 * (ms, two decimals), kills per failpoint and the smallest failing case.
 */
export function crashFigures(
  counts: Readonly<Record<string, number>>,
  recoveryMs: number[],
  byFailpoint: Record<string, number>,
  smallest: { text: string } | null,
): Figures {
  const out: Figures = { ...counts, recoveryMsP50: round(percentile(recoveryMs, 50)), recoveryMsP99: round(percentile(recoveryMs, 99)), recoveryMsMax: round(percentile(recoveryMs, 100)) };
  for (const [n, c] of Object.entries(byFailpoint)) out[`killsAt.${n}`] = c;
  out.smallestMismatch = smallest === null ? 'none' : smallest.text;
  return out;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * What a crash suite keeps over its cycles besides its own counts: recovery
 * times, kills per failpoint, the smallest failing case. `check` runs
 * checkRecoveredCopy with the suites' geometry; `failed` books a failed
 * cycle; `figures` gives crashFigures at the end.
 */
export class CrashLedger<C extends RecoveryCounts & { failures: number } & Record<string, number>> {
  readonly recoveryMs: number[] = [];
  readonly byFailpoint: Record<string, number> = Object.fromEntries(FAILPOINTS.map((n) => [n, 0]));
  private smallest: { commits: number; text: string } | null = null;

  constructor(
    private readonly counts: C,
    private readonly log: (line: string) => void,
  ) {}

  /** checkRecoveredCopy of this cycle's files, counted into this ledger. */
  check(c: Omit<RecoveryCheck, 'pageSize' | 'historyTxns' | 'counts' | 'recoveryMs'>): number {
    return checkRecoveredCopy({ ...c, pageSize: CRASH_PAGE_SIZE, historyTxns: CRASH_HISTORY_TXNS, counts: this.counts, recoveryMs: this.recoveryMs });
  }

  /**
   * When `problems` is not empty: counts and logs the cycle as failed, keeps
   * it if it is the smallest failure so far (fewest commits attempted), and
   * returns true.
   */
  failed(context: string, problems: readonly string[], lastAttempted: number): boolean {
    if (problems.length === 0) return false;
    this.counts.failures++;
    const text = `${context}: ${problems.join('; ')}`;
    this.log(`FAIL ${text}`);
    if (this.smallest === null || lastAttempted < this.smallest.commits) this.smallest = { commits: lastAttempted, text };
    return true;
  }

  /** Median recovery time so far (ms), for progress lines. */
  recoveryP50(): number {
    return percentile(this.recoveryMs, 50);
  }

  figures(): Figures {
    return crashFigures(this.counts, this.recoveryMs, this.byFailpoint, this.smallest);
  }
}
