// What a served cartridge reports (ts/cartridge/serve.ts, spec/cartridge_v1.md
// §7): types only, so that the database handle can list its cartridges
// (db.cartridges()) without depending on the code that serves them.

export type CartridgeState = 'valid' | 'building' | 'invalid';

/** What db.cartridges() and CartridgeService.info() report. */
export interface CartridgeInfo {
  type: 'pending_tasks_by_type';
  file: string;
  state: CartridgeState;
  /** Why it is not valid (state 'invalid', or 'building' after an invalid one); null when valid. */
  why: string | null;
  /** The txn the loaded file was built at (null when none is loaded). */
  builtAtTxn: number | null;
  /** Commits since builtAtTxn that lookups apply as a delta. */
  lagCommits: number;
  /** Added and removed entries of that delta. */
  deltaEntries: number;
  /** Ready tasks in the loaded file. */
  entries: number;
  bytes: number;
  /** Whether the loaded file is served from a memory mapping (native addon) rather than a copy read whole. */
  mapped: boolean;
  /** How long the last build took, ms (null before the first). */
  buildMs: number | null;
  /** Why the last rebuild started: 'missing', 'invalid: …', 'commits', 'delta', 'on demand'. */
  lastRebuildReason: string | null;
  rebuilds: number;
}
