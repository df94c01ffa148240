// The hardening catalogue (issue 5): every suite `npm run hardening` runs, in
// order. A suite returns its figures by name; `failures` is the number of
// invariant violations it saw and must be 0 (a suite may also throw, which
// counts as one failure). Other figures are counts, times and seeds for the
// report (§9), e.g. `cycles`, `lostCommits`, `phantoms`, `recoveryMsP99`.
//
// Append a suite here; ts/hard/main.ts runs them and writes the JSON report.

import { crashSuite } from './crash.js';
import { crashMultiSuite } from './crashmulti.js';
import { iofaultsSuite } from './iofaults.js';
import { powerlossSuite } from './powerloss.js';
import { corruptionSuite } from './corruption.js';
import { fuzzSuite } from './fuzz.js';
import { cargoFuzzSuite } from './cargofuzz.js';
import { goldenSuite } from './golden.js';
import { concurrencySuite } from './concurrency.js';
import { concurrencyMultiSuite } from './concurrencymulti.js';
import { queueCrashSuite } from './queuecrash.js';
import { replicaKillSuite } from './replkill.js';

export interface SuiteOptions {
  /** The full run (`npm run hardening`); false for the bounded version `npm test` runs. */
  long: boolean;
  /** Seed of every random choice; printed so a failure replays. */
  seed: number;
  /** One line of progress or diagnosis. */
  log: (line: string) => void;
}

export type Figures = Record<string, number | string>;

export interface HardeningSuite {
  name: string;
  run(opts: SuiteOptions): Promise<Figures>;
}

export const suites: HardeningSuite[] = [crashSuite, crashMultiSuite, powerlossSuite, iofaultsSuite];
// §4–§7: corruption, fuzzing (fast-check, then cargo-fuzz), golden files, concurrency (in one
// thread, then across worker threads and processes).
suites.push(corruptionSuite, fuzzSuite, cargoFuzzSuite, goldenSuite, concurrencySuite, concurrencyMultiSuite);
// Issue #15: the task queue's agents SIGKILLed at random and at named windows.
suites.push(queueCrashSuite);
// Issue #18: a replica SIGKILLed at random points while the primary writes, against a real NATS cluster.
suites.push(replicaKillSuite);
