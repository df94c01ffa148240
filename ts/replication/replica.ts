// The replica's side of replication (spec/replication_v0.md §4): a local
// database that follows the stream, applying each commit record, in order, as
// one commit with the same txn id, so snapshots and time travel by txn id
// answer as on the primary. Its handle refuses writes (NotPrimary) until
// promote().
//
// Crash safety needs nothing but the database itself: on open, the replica
// resumes at the first stream message whose txn is after its own latest
// durable commit (a binary search of the stream), so a crash anywhere loses
// at most commits not yet durable here, which are applied again, and applies
// nothing twice: a message whose txn it has is skipped, and one that is not
// the next txn stops the replica (a gap: its lastError says so) rather than
// apply out of order.

import { EventEmitter } from 'node:events';
import { open } from '../db/database.js';
import { createEmptyAt, databasePath } from '../db/open.js';
import { checkOptions } from '../db/options.js';
import { MAX_PAYLOAD_CEILING } from '../format/record.js';
import { listSnapshots, loadSnapshot, snapshotBucket } from './snapshot.js';
import type { Database } from '../db/database.js';
import type { OpenOptions } from '../db/options.js';
import { engineOfDatabase } from '../db/internal.js';
import type { Engine } from '../db/engine.js';
import { beginWriteAsync } from '../db/writer.js';
import { NorthstarError } from '../errors.js';
import { commitOps } from './record.js';
import { snapshotHash } from './hash.js';
import type { ReadTxn } from '../txn/read.js';
import type { BeginReadOptions } from '../db/options.js';
import { CHECKPOINT_HEADER, openStream, PART_HEADER, partOf, seqAfterTxn, STATE_HASH_HEADER, streamEnd, TXN_HEADER, txnAt, txnOf, type Stream, type StreamOptions } from './stream.js';
import { Replication, type ReplicationMode, type ReplicationOptions } from './primary.js';

export interface ReplicaOptions extends StreamOptions {
  /** Options of the local database (open()). */
  db?: OpenOptions;
}

export interface ReplicaLag {
  /** Commits in the stream not applied here yet. */
  txns: number;
  /** How long ago the oldest of them was published (0 when none is waiting). */
  ms: number;
}

export interface ReplicaStats {
  state: 'following' | 'stopped' | 'promoted' | 'closed';
  /** The last txn applied here. */
  appliedTxn: number;
  /** Its stream sequence. */
  appliedSeq: number;
  lag: ReplicaLag;
  /** Why following stopped (a gap, a damaged record, a failed commit, a state hash that differs from the primary's), or null. */
  lastError: string | null;
  /** State-hash checkpoints compared with the primary's and equal (§4.4). */
  hashChecks: number;
  /** The last checkpoint txn verified, or 0. */
  verifiedTxn: number;
}

interface ConsumerLike {
  stop(): void;
}

/** The events a Replica emits: 'applied' (txnId) once each commit it applied is durable and visible here. */
export class Replica extends EventEmitter {
  private state: ReplicaStats['state'] = 'following';
  private appliedTxn: number;
  private appliedSeq = 0;
  /** The last stream sequence consumed (applied, skipped, or a part of a commit not whole yet). */
  private consumedSeq = 0;
  private pendingInStream = 0;
  /** Publish time (ms since the epoch) of the first message not applied yet, when one is known to wait. */
  private waitingSinceMs: number | null = null;
  private lastError: string | null = null;
  private consumer: ConsumerLike | null = null;
  private loop: Promise<void> | null = null;
  /** The last applied commit's promise (durable when it resolves). */
  private lastCommit: Promise<unknown> = Promise.resolve();
  private readonly seqWaiters: { seq: number; resolve: () => void }[] = [];
  /** Checkpoint hashes (§4.4), by txn: this replica's, and the primary's, until the two meet. */
  private readonly ownHashes = new Map<number, string>();
  private readonly primaryHashes = new Map<number, string>();
  private hashChecks = 0;
  private verifiedTxn = 0;

  private constructor(
    readonly db: Database,
    private readonly e: Engine,
    private readonly stream: Stream,
    private readonly options: ReplicaOptions,
  ) {
    super();
    this.appliedTxn = db.txnId;
  }

  static async open(path: string, options: ReplicaOptions): Promise<Replica> {
    // One connection serves the bootstrap (a new replica) and the following after it.
    const stream = await openStream(options);
    let db: Database;
    try {
      await bootstrap(path, options, stream);
      db = open(path, options.db);
    } catch (err) {
      await stream.nc.close().catch(() => {});
      throw err;
    }
    const e = engineOfDatabase(db);
    e.writeFence = new NorthstarError('NotPrimary', `${path} is a replica of stream ${options.stream}: writes come from the stream (promote() to accept them)`);
    const r = new Replica(db, e, stream, options);
    try {
      await r.follow();
    } catch (err) {
      await stream.nc.close().catch(() => {});
      db.close();
      throw err;
    }
    return r;
  }

  /** The latest txn applied here (as db.txnId). */
  get txnId(): number {
    return this.db.txnId;
  }

  /** A snapshot, as on the primary: the latest applied, or `{ txnId }` within the retained history. */
  beginRead(options?: BeginReadOptions): ReadTxn {
    return this.db.beginRead(options);
  }

  lag(): ReplicaLag {
    return { txns: this.pendingInStream, ms: this.pendingInStream === 0 || this.waitingSinceMs === null ? 0 : Math.max(0, Date.now() - this.waitingSinceMs) };
  }

  stats(): ReplicaStats {
    return { state: this.state, appliedTxn: this.appliedTxn, appliedSeq: this.appliedSeq, lag: this.lag(), lastError: this.lastError, hashChecks: this.hashChecks, verifiedTxn: this.verifiedTxn };
  }

  /**
   * Catches up to the end of the stream as it is now, stops following, and
   * makes this database the primary: its handle accepts writes, published to
   * the stream with startReplication (mode `mode`, default 'quorum'). If
   * another primary appends meanwhile, the new primary's start fails with
   * NotPrimary and the replica goes on following.
   */
  async promote(options: { mode?: ReplicationMode; timeoutMs?: number } & Partial<ReplicationOptions> = {}): Promise<Replication> {
    if (this.state !== 'following') throw new NorthstarError('InvalidArgument', `the replica is ${this.state}, not following`);
    const end = await streamEnd(this.stream);
    await this.reach(end.lastSeq, options.timeoutMs ?? 60_000);
    await this.stopFollowing();
    this.e.writeFence = null;
    try {
      const r = await Replication.start(this.db, { ...this.options, mode: 'quorum', ...options });
      this.state = 'promoted';
      await this.stream.nc.close().catch(() => {});
      return r;
    } catch (err) {
      this.e.writeFence = new NorthstarError('NotPrimary', `${this.db.path} is a replica of stream ${this.options.stream}: writes come from the stream (promote() to accept them)`);
      this.state = 'following';
      await this.follow();
      throw err;
    }
  }

  /** Stops following and closes the local database (unless promoted: then the database stays open for its new primary). */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const promoted = this.state === 'promoted';
    if (!promoted) await this.stopFollowing();
    this.state = 'closed';
    await this.stream.nc.close().catch(() => {});
    if (!promoted) this.db.close();
  }

  // ---- following ----

  /** Starts a consumer at the first message after the latest txn applied here. */
  private async follow(): Promise<void> {
    const end = await streamEnd(this.stream);
    this.appliedTxn = this.db.txnId;
    let from = end.lastSeq + 1;
    if (end.messages > 0) {
      from = await seqAfterTxn(this.stream, this.appliedTxn, end.firstSeq, end.lastSeq);
      if (from <= end.lastSeq) {
        const first = await txnAt(this.stream, from);
        if (first !== this.appliedTxn + 1) {
          throw new NorthstarError('SnapshotNotFound', `stream ${this.stream.name} starts at txn ${first} (sequence ${from}), ${this.db.path} is at txn ${this.appliedTxn}: the commits between are not in the stream`);
        }
      } else if (end.lastTxn < this.appliedTxn) {
        throw new NorthstarError('InvalidArgument', `${this.db.path} is at txn ${this.appliedTxn}, ahead of stream ${this.stream.name} (txn ${end.lastTxn}): not a replica of it`);
      }
    }
    this.appliedSeq = from - 1;
    this.consumedSeq = from - 1;
    this.pendingInStream = Math.max(0, end.lastSeq - this.appliedSeq);
    const { DeliverPolicy } = await import('@nats-io/jetstream');
    const c = await this.stream.js.consumers.get(this.stream.name, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from });
    const msgs = await c.consume({ max_messages: 512 });
    this.consumer = msgs;
    this.state = 'following';
    this.loop = (async () => {
      try {
        // The parts so far of a commit split over several messages (§2.3).
        let parts: { txn: number; n: number; data: Uint8Array[] } | null = null;
        for await (const m of msgs) {
          const txn = txnOf(m.headers?.get(TXN_HEADER));
          const [i, n] = partOf(m.headers?.get(PART_HEADER));
          this.pendingInStream = m.info.pending;
          this.consumedSeq = m.seq;
          if (txn <= this.appliedTxn) {
            this.wakeSeqWaiters();
            continue; // applied already (a redelivery after a reconnect)
          }
          if (txn !== this.appliedTxn + 1) throw new NorthstarError('Corrupt', `stream ${this.stream.name}: txn ${txn} at sequence ${m.seq} after txn ${this.appliedTxn}: a gap`);
          let data = m.data;
          if (n > 1) {
            // Part 1 starts the commit afresh: parts of it a dead publisher left unfinished are dropped.
            if (i === 1) parts = { txn, n, data: [m.data] };
            else if (parts === null || parts.txn !== txn || parts.n !== n || parts.data.length !== i - 1) throw new NorthstarError('Corrupt', `stream ${this.stream.name}: part ${i}/${n} of txn ${txn} at sequence ${m.seq} does not follow part ${parts?.data.length ?? 0}`);
            else parts.data.push(m.data);
            if (i < n) {
              this.wakeSeqWaiters();
              continue;
            }
            data = Buffer.concat(parts.data);
          }
          parts = null;
          this.waitingSinceMs = m.info.pending > 0 ? Math.floor(m.info.timestampNanos / 1e6) : null;
          const theirs = m.headers?.get(STATE_HASH_HEADER);
          if (theirs) this.primaryHash(theirs);
          if (this.state !== 'following') break; // the primary's hash showed this replica diverged
          await this.apply(txn, data, m.headers?.get(CHECKPOINT_HEADER) === '1');
          this.appliedTxn = txn;
          this.appliedSeq = m.seq;
          this.wakeSeqWaiters();
        }
      } catch (err) {
        this.lastError = (err as Error).message;
        this.state = 'stopped';
        msgs.stop();
      }
    })();
  }

  private async stopFollowing(): Promise<void> {
    this.consumer?.stop();
    this.consumer = null;
    await this.loop;
    this.loop = null;
    await this.lastCommit;
    this.appliedTxn = this.db.txnId;
  }

  /** Resolves once the message at `seq` is applied; ReplicationUnavailable after timeoutMs. */
  private reach(seq: number, timeoutMs: number): Promise<void> {
    if (this.consumedSeq >= seq) return Promise.resolve();
    if (this.state !== 'following') return Promise.reject(new NorthstarError('InvalidArgument', `the replica stopped: ${this.lastError}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new NorthstarError('ReplicationUnavailable', `the replica did not reach sequence ${seq} in ${timeoutMs} ms (at ${this.consumedSeq})`)), timeoutMs);
      this.seqWaiters.push({
        seq,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  private wakeSeqWaiters(): void {
    for (let i = this.seqWaiters.length - 1; i >= 0; i--) {
      if (this.seqWaiters[i]!.seq <= this.consumedSeq) this.seqWaiters.splice(i, 1)[0]!.resolve();
    }
  }

  /**
   * Applies one commit record as the next commit here (same txn id): the
   * record is checked (checksums, type, txn) before anything is written.
   */
  private async apply(txn: number, bytes: Uint8Array, checkpoint: boolean): Promise<void> {
    const ops = commitOps(bytes, txn, this.e.pager.kernels);
    const w = await beginWriteAsync(this.e, Infinity, undefined);
    try {
      if (w.txnId !== txn) throw new NorthstarError('Corrupt', `${this.db.path}: the next commit here is txn ${w.txnId}, the stream's is ${txn} (written by another handle?)`);
      for (const op of ops) {
        if (op.type === 'put') w.put(op.key, op.value);
        else w.del(op.key);
      }
    } catch (err) {
      w.abort();
      throw err;
    }
    const committed = w.commitAsync();
    this.lastCommit = committed.then(
      () => {
        this.emit('applied', txn);
        if (checkpoint) void snapshotHash(this.db, txn).then((h) => h !== null && this.compareHashes(txn, h, null), () => {});
      },
      (err: unknown) => {
        this.lastError = `commit of txn ${txn} failed: ${(err as Error).message}`;
        this.state = 'stopped';
        this.consumer?.stop();
      },
    );
  }

  // ---- state-hash checkpoints (§4.4) ----

  /** The primary's `<txn>:<hash>` header. */
  private primaryHash(header: string): void {
    const at = header.indexOf(':');
    const txn = Number(header.slice(0, at));
    if (at > 0 && Number.isSafeInteger(txn)) this.compareHashes(txn, null, header.slice(at + 1));
  }

  /**
   * Records one side's hash of checkpoint `txn`; once both are known they are
   * compared: equal counts a check; different stops the replica (its state is
   * not the primary's at that txn: lastError says so), and reads go on.
   */
  private compareHashes(txn: number, own: string | null, theirs: string | null): void {
    if (own !== null) this.ownHashes.set(txn, own);
    if (theirs !== null) this.primaryHashes.set(txn, theirs);
    const a = this.ownHashes.get(txn);
    const b = this.primaryHashes.get(txn);
    if (a === undefined || b === undefined) {
      // A side whose other never comes (its snapshot left the history first) is dropped after 16 more.
      for (const m of [this.ownHashes, this.primaryHashes]) if (m.size > 16) m.delete(m.keys().next().value!);
      return;
    }
    this.ownHashes.delete(txn);
    this.primaryHashes.delete(txn);
    if (a === b) {
      this.hashChecks++;
      this.verifiedTxn = Math.max(this.verifiedTxn, txn);
      return;
    }
    this.lastError = `state hash at txn ${txn} is ${a} here, ${b} on the primary: this replica has diverged (stopped following)`;
    this.state = 'stopped';
    this.consumer?.stop();
  }
}

/**
 * A replica that does not exist yet starts from the newest snapshot of the
 * stream's bucket, when there is one (§4.5): the database is created empty
 * at the snapshot's txn − 1 and the snapshot loaded as its txn, checked
 * against its trailer's entry count and state hash. The files are made here,
 * so a failed bootstrap removes them, and only them.
 */
async function bootstrap(path: string, options: ReplicaOptions, stream: Stream): Promise<void> {
  const abs = databasePath(path);
  const opts = checkOptions(options.db ?? {});
  if (opts.fs.exists(abs) || opts.fs.exists(`${abs}.log`)) return;
  const bucket = await snapshotBucket(stream, null);
  const newest = bucket === null ? undefined : (await listSnapshots(bucket)).at(-1);
  if (bucket === null || newest === undefined) return;
  createEmptyAt(abs, opts, newest.txn - 1);
  let ok = false;
  try {
    const db = open(abs, { ...options.db, maxTxnBytes: MAX_PAYLOAD_CEILING });
    try {
      const w = await beginWriteAsync(engineOfDatabase(db), Infinity, undefined);
      try {
        await loadSnapshot(bucket, newest, w);
        if (w.txnId !== newest.txn) throw new NorthstarError('Corrupt', `${abs}: the snapshot's txn is ${newest.txn}, the new database's ${w.txnId}`);
      } catch (err) {
        w.abort();
        throw err;
      }
      await w.commitAsync();
      ok = true;
    } finally {
      db.close();
    }
  } finally {
    // Files this call created and could not fill: nothing else is in them.
    if (!ok) for (const f of [abs, `${abs}.log`, `${abs}.lock`]) opts.fs.remove(f);
  }
}

/** Opens (or creates) `path` as a read-only replica following the stream (spec/replication_v0.md §4). */
export function openReplica(path: string, options: ReplicaOptions): Promise<Replica> {
  return Replica.open(path, options);
}
