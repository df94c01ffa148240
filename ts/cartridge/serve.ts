// A cartridge served beside a running database (spec/cartridge_v1.md §7):
// openCartridge(db) loads the file if it fits the database, keeps it exact by
// applying the commits since (§6) at each lookup, and rebuilds it in the
// background when it is missing or invalid, every `everyCommits` commits,
// when its delta passes `deltaEntries`, or on demand. A rebuild never blocks
// the event loop for long: it scans a snapshot's ready keys a slice at a
// time, encodes and checksums in slices, and writes the file with
// asynchronous I/O (atomically, §5). Until a valid cartridge is loaded,
// lookups are answered from the tree, so they are never blocked and never
// wrong.

import type { Database } from '../db/database.js';
import { engineOfDatabase } from '../db/internal.js';
import { NorthstarError } from '../errors.js';
import { MAX_PRIORITY, QUEUE_KEY_PREFIX } from '../queue/keys.js';
import type { ReadySource, ReadyView } from '../queue/ready.js';
import { GroupCollector, readyKeyOf } from './build.js';
import { LiveCartridge } from './delta.js';
import { Cartridge, encodeSteps, type CartridgeEntry, type CartridgeGroup } from './format.js';
import { loadCartridgeFile, writeCartridgeFileAsync, type LoadedCartridge } from './file.js';
import type { CartridgeInfo, CartridgeState } from './info.js';

export interface OpenCartridgeOptions {
  /** The cartridge file (default: `<db>.pending_tasks_by_type.cartridge`). */
  file?: string;
  /** Rebuild after this many commits since the file's txn (default 10,000; Infinity: never for this reason). */
  everyCommits?: number;
  /** Rebuild when the delta holds this many added and removed entries (default 100,000). */
  deltaEntries?: number;
  /** Ready keys scanned per slice of a rebuild, between turns of the event loop (default 20,000). */
  sliceKeys?: number;
}

export type { CartridgeInfo, CartridgeState } from './info.js';

export const DEFAULT_CARTRIDGE_EVERY_COMMITS = 10_000;
export const DEFAULT_CARTRIDGE_DELTA_ENTRIES = 100_000;
const DEFAULT_SLICE_KEYS = 20_000;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** One ready task as a lookup returns it. */
export interface ReadyTask {
  id: number;
  priority: number;
  readyAt: number;
}

/** A cartridge entry as a lookup returns it (rank is MAX_PRIORITY − priority). */
export const asTask = (e: CartridgeEntry): ReadyTask => ({ id: e.id, priority: MAX_PRIORITY - e.rank, readyAt: e.readyAt });

export class CartridgeService implements ReadySource {
  readonly file: string;
  private live: LiveCartridge | null = null;
  /** The loaded file under `live`'s base (its mapping is released when `live` changes), or null. */
  private loaded: LoadedCartridge | null = null;
  private state: CartridgeState = 'invalid';
  private why: string | null = 'not loaded yet';
  private building: Promise<void> | null = null;
  private buildMs: number | null = null;
  private lastRebuildReason: string | null = null;
  private rebuilds = 0;
  private closed = false;
  private readonly everyCommits: number;
  private readonly deltaLimit: number;
  private readonly sliceKeys: number;

  constructor(
    private readonly db: Database,
    options: OpenCartridgeOptions = {},
  ) {
    this.file = options.file ?? `${db.path}.pending_tasks_by_type.cartridge`;
    this.everyCommits = options.everyCommits ?? DEFAULT_CARTRIDGE_EVERY_COMMITS;
    this.deltaLimit = options.deltaEntries ?? DEFAULT_CARTRIDGE_DELTA_ENTRIES;
    this.sliceKeys = options.sliceKeys ?? DEFAULT_SLICE_KEYS;
    this.load();
    if (this.live === null) void this.rebuild(this.why === 'missing' ? 'missing' : `invalid: ${this.why}`).catch(() => {});
  }

  /** How many tasks of `type` are ready in queue `queue`, exact at the database's latest commit. */
  count(queue: string, type: string): number {
    const live = this.current();
    if (live !== null) return live.count(queue, type);
    let n = 0;
    this.fromTree(queue, type, Infinity, () => n++);
    return n;
  }

  /** Up to `limit` ready tasks of `type` in queue `queue`, in claim order, exact at the latest commit. */
  next(queue: string, type: string, limit = 1): ReadyTask[] {
    const live = this.current();
    if (live !== null) return live.entries(queue, type, limit).map(asTask);
    const out: ReadyTask[] = [];
    this.fromTree(queue, type, limit, (t) => out.push(t));
    return out;
  }

  /**
   * The cartridge as a claim's ReadyView (ts/queue/ready.ts), exact at
   * committed txn `txnId`: brought up to it, or null when it cannot be (not
   * loaded, closed, or not at that txn), and the claim reads the tree.
   */
  viewAt(txnId: number): ReadyView | null {
    if (this.closed) return null;
    const live = this.current();
    return live !== null && live.txnId === txnId ? live : null;
  }

  info(): CartridgeInfo {
    const live = this.live;
    const base = live?.base ?? null;
    return {
      type: 'pending_tasks_by_type',
      file: this.file,
      state: this.state,
      why: this.state === 'valid' ? null : this.why,
      builtAtTxn: base === null ? null : base.header.txnId,
      lagCommits: live === null ? 0 : this.latestTxn() - base!.header.txnId,
      deltaEntries: live === null ? 0 : live.deltaSize,
      entries: base === null ? 0 : base.header.entryCount,
      bytes: base === null ? 0 : base.header.fileLength,
      mapped: this.loaded?.mapped ?? false,
      buildMs: this.buildMs,
      lastRebuildReason: this.lastRebuildReason,
      rebuilds: this.rebuilds,
    };
  }

  /**
   * Builds the cartridge at the latest commit in the background and loads it;
   * resolves when it is in use (a build already running is joined). Lookups
   * go on meanwhile, from the old cartridge or the tree.
   */
  rebuild(reason = 'on demand'): Promise<void> {
    if (this.closed) return Promise.reject(new NorthstarError('Closed', 'the cartridge service is closed'));
    if (this.building !== null) return this.building;
    this.lastRebuildReason = reason;
    if (this.live === null) this.state = 'building';
    this.building = this.build()
      .catch((err: unknown) => {
        // The old cartridge, if any, keeps serving; without one the state says why.
        if (this.live === null) {
          this.state = 'invalid';
          this.why = `rebuild failed: ${(err as Error).message}`;
        }
        throw err;
      })
      .finally(() => {
        this.building = null;
      });
    return this.building;
  }

  /** Stops: waits for a running build, then forgets the cartridge (the file stays). */
  async close(): Promise<void> {
    this.closed = true;
    await this.building?.catch(() => {});
    this.use(null, null);
    engineOfDatabase(this.db).cartridges.delete(this);
  }

  // ---- loading and catching up ----

  /** Loads the file if it passes every check and fits this database (§3); else records why not. */
  private load(): void {
    let loaded: LoadedCartridge;
    try {
      loaded = loadCartridgeFile(this.file);
    } catch (err) {
      const missing = (err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT';
      this.invalidate(missing ? 'missing' : (err as Error).message);
      return;
    }
    const c = loaded.cartridge;
    const e = engineOfDatabase(this.db);
    const unfit =
      c.header.dbId !== e.log.dbId
        ? `built from database ${c.header.dbId}, this is database ${e.log.dbId}`
        : c.header.txnId > this.latestTxn()
          ? `built at txn ${c.header.txnId}, after this database's latest commit ${this.latestTxn()}`
          : null;
    if (unfit !== null) {
      loaded.close();
      return this.invalidate(unfit);
    }
    this.use(new LiveCartridge(c), loaded);
    this.state = 'valid';
    this.why = null;
    this.current(); // brought up to the latest commit now; a catch-up that fails invalidates it (why is set)
  }

  /** Serves `live` (over `loaded`, the file it came from, or null for bytes in memory), releasing the one before. */
  private use(live: LiveCartridge | null, loaded: LoadedCartridge | null): void {
    const before = this.loaded;
    this.live = live;
    this.loaded = loaded;
    // Lookups are synchronous and views live within one transaction (viewAt), so nothing reads the old bytes past here.
    if (before !== null && before !== loaded) before.close();
  }

  private invalidate(why: string): void {
    this.use(null, null);
    this.state = this.building !== null ? 'building' : 'invalid';
    this.why = why;
  }

  private latestTxn(): number {
    return this.db.txnId;
  }

  /** The live cartridge brought up to the latest commit, or null (then answer from the tree). Starts a rebuild when a trigger fires. */
  private current(): LiveCartridge | null {
    if (this.closed) throw new NorthstarError('Closed', 'the cartridge service is closed');
    const live = this.live;
    if (live === null) return null;
    const latest = this.latestTxn();
    if (live.txnId < latest) {
      const e = engineOfDatabase(this.db);
      try {
        live.catchUp(e.log, e.pager.kernels, latest);
      } catch (err) {
        this.invalidate(`cannot catch up: ${(err as Error).message}`);
        void this.rebuild(`invalid: ${this.why}`).catch(() => {});
        return null;
      }
    }
    if (this.building === null) {
      if (live.txnId - live.base.header.txnId >= this.everyCommits) void this.rebuild('commits').catch(() => {});
      else if (live.deltaSize >= this.deltaLimit) void this.rebuild('delta').catch(() => {});
    }
    return live;
  }

  /** Ready tasks of (queue, type) from the latest snapshot's ready index, in claim order. */
  private fromTree(queue: string, type: string, limit: number, each: (t: ReadyTask) => void): void {
    const prefix = Buffer.concat([QUEUE_KEY_PREFIX, Buffer.from(queue, 'utf8'), Buffer.from([0, 0x52]), Buffer.from(type, 'utf8'), Buffer.from([0])]);
    const r = this.db.beginRead();
    try {
      let n = 0;
      for (const [k] of r.scan({ prefix })) {
        if (n++ >= limit) break;
        const ready = readyKeyOf(k);
        if (ready !== null) each(asTask(ready.entry));
      }
    } finally {
      r.close();
    }
  }

  // ---- building ----

  private async build(): Promise<void> {
    const started = process.hrtime.bigint();
    const e = engineOfDatabase(this.db);
    const r = this.db.beginRead();
    let bytes: Uint8Array;
    let txnId: number;
    let scanned = 0;
    try {
      txnId = r.txnId;
      // The snapshot is the published state (beginRead of the latest): its record ends the log's committed part.
      const logEnd = txnId === 0 ? e.log.base : e.published.logEnd;
      const collector = new GroupCollector();
      const it = r.scan({ prefix: QUEUE_KEY_PREFIX })[Symbol.iterator]();
      for (let s = it.next(); !s.done; s = it.next()) {
        collector.add(s.value[0]);
        if (++scanned % this.sliceKeys === 0) {
          await turn();
          if (this.closed) return;
        }
      }
      bytes = await encodeInSlices(collector.groups(), e.log.dbId, txnId, logEnd);
    } finally {
      r.close();
    }
    await writeCartridgeFileAsync(this.file, bytes);
    if (this.closed) return;
    // Served from the file just written (mapped, with the native addon), checked as any file is; from the
    // bytes in memory when the file cannot be loaded or another process replaced it with an unfit one.
    let loaded: LoadedCartridge | null = null;
    try {
      loaded = loadCartridgeFile(this.file);
      if (loaded.cartridge.header.dbId !== e.log.dbId || loaded.cartridge.header.txnId > this.latestTxn()) {
        loaded.close();
        loaded = null;
      }
    } catch {
      loaded = null;
    }
    this.use(new LiveCartridge(loaded?.cartridge ?? Cartridge.decode(bytes)), loaded);
    this.state = 'valid';
    this.why = null;
    this.rebuilds++;
    this.buildMs = Number(process.hrtime.bigint() - started) / 1e6;
  }
}

/** encodeCartridge in slices (encodeSteps), a turn of the event loop between them. */
async function encodeInSlices(groups: CartridgeGroup[], dbId: number, txnId: number, logEnd: number): Promise<Uint8Array> {
  const steps = encodeSteps({ dbId, txnId, logEnd, groups });
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
    await turn();
  }
}

/** Serves the pending_tasks_by_type cartridge of `db` (spec §7); listed by db.cartridges(). */
export function openCartridge(db: Database, options: OpenCartridgeOptions = {}): CartridgeService {
  const s = new CartridgeService(db, options);
  engineOfDatabase(db).cartridges.add(s);
  return s;
}
