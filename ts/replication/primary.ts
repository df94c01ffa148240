// The primary's side of replication (spec/replication_v0.md §3):
// startReplication publishes every commit of the database, in txn order, to
// the JetStream stream, each with the stream's expected last sequence, so
// that exactly one primary can append: a deposed primary's next publish
// fails (wrong last sequence), and from then on its writes fail with
// NotPrimary.
//
// What is published is each durable, visible commit's log record, read back
// from the log: commits of every handle, thread and process of the database
// (this handle follows them), never one a crash could still take back. The
// publisher keeps up to `maxInFlight` publishes in flight, their expected
// sequences known in advance (it is the only appender); a publish that times
// out or meets a lost connection is sent again with the same message id,
// which JetStream de-duplicates, until it is acknowledged.
//
// Modes: 'async' publishes after the local commit and nothing waits for it;
// 'quorum' makes commitAsync() of this handle resolve only once the stream
// has acknowledged the commit (stored on a majority of its replicas), or
// reject with ReplicationUnavailable after `quorumTimeoutMs` (the commit
// stands locally and is published when the cluster is back).

import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.js';
import { listen, unlisten } from '../db/changes.js';
import { engineOfDatabase } from '../db/internal.js';
import type { Engine } from '../db/engine.js';
import { NorthstarError } from '../errors.js';
import { isCommitRecord } from '../format/record.js';
import { sameCommit } from './record.js';
import { snapshotHash } from './hash.js';
import type { ObjectStore } from '@nats-io/obj';
import { listSnapshots, putSnapshot, snapshotBucket } from './snapshot.js';
import { apiErrorCode, CHECKPOINT_HEADER, DEFAULT_STREAM_REPLICAS, STATE_HASH_HEADER, openStream, PART_HEADER, streamEnd, TXN_HEADER, WRONG_LAST_SEQUENCE, type Stream, type StreamOptions } from './stream.js';

export type ReplicationMode = 'async' | 'quorum';

export interface ReplicationOptions extends StreamOptions {
  /** 'async' (default): publish after the local commit; 'quorum': commitAsync() resolves once the stream has the commit. */
  mode?: ReplicationMode;
  /** In quorum mode, how long commitAsync() waits for the stream before ReplicationUnavailable (default 10 s). */
  quorumTimeoutMs?: number;
  /** Publishes awaiting their acknowledgement at once (default 256). */
  maxInFlight?: number;
  /** Every this many txns, a state-hash checkpoint replicas verify (default 10,000; 0: none). */
  hashEveryTxns?: number;
  /** Every this many txns, a snapshot in the stream's object store for new replicas to start from (default 100,000; 0: none). */
  snapshotEveryTxns?: number;
  /** Snapshots kept (default 2); the stream is trimmed up to the oldest kept. */
  keepSnapshots?: number;
}

export interface ReplicationStats {
  mode: ReplicationMode;
  /** 'running'; 'deposed' once another primary appended to the stream (writes fail with NotPrimary); 'closed'. */
  state: 'running' | 'deposed' | 'closed';
  /** The last txn the stream has acknowledged. */
  publishedTxn: number;
  /** The stream sequence of that txn's message. */
  streamSeq: number;
  /** Commits visible locally and not yet acknowledged by the stream. */
  pending: number;
  /** The last publish or snapshot error (cleared by the next successful publish), or null. */
  lastError: string | null;
  /** Snapshots this publisher stored, and the txn of the last (0: none). */
  snapshots: number;
  lastSnapshotTxn: number;
}

export const DEFAULT_QUORUM_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_IN_FLIGHT = 256;
export const DEFAULT_HASH_EVERY_TXNS = 10_000;
export const DEFAULT_SNAPSHOT_EVERY_TXNS = 100_000;
export const DEFAULT_KEEP_SNAPSHOTS = 2;
/** Bytes of a message left for its headers when a record is split into parts (§2.3). */
const PART_HEADROOM = 8 * 1024;
/** How long a publish waits for its acknowledgement before it is sent again (ms). */
const PUBLISH_TIMEOUT_MS = 5_000;
/** Pause after a failed publish before the retry (ms). */
const RETRY_PAUSE_MS = 250;
/** Without a change watch (see db/changes.ts), how often the publisher looks for commits of other handles (ms). */
const POLL_MS = 50;

interface Waiter {
  txnId: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout | null;
}

interface Outgoing {
  txnId: number;
  end: number;
  bytes: Uint8Array;
  /** `<txn>:<hash>` of an earlier checkpoint, carried by this message (kept for its retries). */
  stateHash: string | null;
}

export class Replication {
  readonly mode: ReplicationMode;
  private state: ReplicationStats['state'] = 'running';
  private publishedTxn: number;
  private streamSeq: number;
  /** Log position of the first record not yet acknowledged. */
  private nextPosition: number;
  private lastError: string | null = null;
  private pumping: Promise<void> | null = null;
  private busy = false;
  private again = false;
  /** Calls waiting for a txn to be in the stream, in txn order; a quorum commit's has a timer. */
  private readonly waiters: Waiter[] = [];
  /** The snapshot bucket, once opened. */
  private bucket: ObjectStore | null = null;
  private readonly onCommit = (): void => this.kick();
  private poll: NodeJS.Timeout | null = null;
  private readonly quorumTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly hashEveryTxns: number;
  private readonly snapshotEveryTxns: number;
  private readonly keepSnapshots: number;
  private readonly replicas: number;
  /** The snapshot being stored, if one is, and the one due after it. */
  private snapshotting: Promise<void> | null = null;
  private dueSnapshot: { txnId: number; seq: number } | null = null;
  /** Snapshots stored by this publisher, and the last error storing one (stats). */
  private snapshots = 0;
  private lastSnapshotTxn = 0;
  /** A checkpoint's `<txn>:<hash>` computed and not yet given to a message. */
  private stateHash: string | null = null;
  /**
   * This publisher's id in message ids (`<txn>.<epoch>`): JetStream drops a
   * retried publish as a duplicate of this publisher's own, never of another
   * primary's record of the same txn, whose expected sequence then fences it.
   */
  private readonly epoch = randomBytes(6).toString('hex');

  private constructor(
    private readonly db: Database,
    private readonly e: Engine,
    private readonly stream: Stream,
    options: ReplicationOptions,
    start: { txnId: number; seq: number; position: number },
  ) {
    this.mode = options.mode ?? 'async';
    this.quorumTimeoutMs = options.quorumTimeoutMs ?? DEFAULT_QUORUM_TIMEOUT_MS;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.hashEveryTxns = options.hashEveryTxns ?? DEFAULT_HASH_EVERY_TXNS;
    this.snapshotEveryTxns = options.snapshotEveryTxns ?? DEFAULT_SNAPSHOT_EVERY_TXNS;
    this.keepSnapshots = options.keepSnapshots ?? DEFAULT_KEEP_SNAPSHOTS;
    this.replicas = options.replicas ?? DEFAULT_STREAM_REPLICAS;
    this.publishedTxn = start.txnId;
    this.streamSeq = start.seq;
    this.nextPosition = start.position;
  }

  /** Connects, checks that this database is the stream's primary (§3.1), and starts publishing. */
  static async start(db: Database, options: ReplicationOptions): Promise<Replication> {
    const mode = options.mode ?? 'async';
    if (mode !== 'async' && mode !== 'quorum') throw new NorthstarError('InvalidArgument', `mode must be 'async' or 'quorum', got ${String(mode)}`);
    const qt = options.quorumTimeoutMs ?? DEFAULT_QUORUM_TIMEOUT_MS;
    if (typeof qt !== 'number' || !(qt > 0)) throw new NorthstarError('InvalidArgument', 'quorumTimeoutMs must be a positive number of milliseconds');
    const mif = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(mif) || mif < 1) throw new NorthstarError('InvalidArgument', 'maxInFlight must be a positive integer');
    const every = options.hashEveryTxns ?? DEFAULT_HASH_EVERY_TXNS;
    if (!Number.isInteger(every) || every < 0) throw new NorthstarError('InvalidArgument', 'hashEveryTxns must be a non-negative integer');
    const snapEvery = options.snapshotEveryTxns ?? DEFAULT_SNAPSHOT_EVERY_TXNS;
    if (!Number.isInteger(snapEvery) || snapEvery < 0) throw new NorthstarError('InvalidArgument', 'snapshotEveryTxns must be a non-negative integer');
    const keep = options.keepSnapshots ?? DEFAULT_KEEP_SNAPSHOTS;
    if (!Number.isInteger(keep) || keep < 1) throw new NorthstarError('InvalidArgument', 'keepSnapshots must be a positive integer');
    const e = engineOfDatabase(db);
    if (e.commitGate !== null || e.logHold !== null) throw new NorthstarError('InvalidArgument', `${db.path} is already replicating (or is a replica)`);
    const stream = await openStream(options);
    try {
      const start = await startPoint(db, e, stream);
      const r = new Replication(db, e, stream, options, start);
      r.install();
      return r;
    } catch (err) {
      await stream.nc.close().catch(() => {});
      throw err;
    }
  }

  /** Resolves once commit `txnId` (and every one before it) is in the stream; NotPrimary if this primary was deposed first. */
  flushed(txnId: number): Promise<void> {
    return this.wait(txnId, null);
  }

  /**
   * flushed(), and with `timeoutMs` a rejection with ReplicationUnavailable
   * after that long (the waiter leaves the list: an outage does not pile them up).
   */
  private wait(txnId: number, timeoutMs: number | null): Promise<void> {
    if (txnId <= this.publishedTxn) return Promise.resolve();
    if (this.state === 'deposed') return Promise.reject(this.notPrimary());
    if (this.state === 'closed') return Promise.reject(new NorthstarError('Closed', 'replication is closed'));
    return new Promise((resolve, reject) => {
      const w: Waiter = { txnId, resolve, reject, timer: null };
      if (timeoutMs !== null) {
        w.timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new NorthstarError('ReplicationUnavailable', `commit ${txnId} is durable here, but stream ${this.stream.name} has not acknowledged it in ${timeoutMs} ms${this.lastError ? `: ${this.lastError}` : ''}; it is published when the stream is back`));
        }, timeoutMs);
      }
      // In txn order (commits come in order: this is an append but for flushed() of an earlier txn).
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1]!.txnId > txnId) i--;
      this.waiters.splice(i, 0, w);
      this.kick();
    });
  }

  /** Settles every waiter with `err`. */
  private rejectWaiters(err: unknown): void {
    for (const w of this.waiters.splice(0)) {
      if (w.timer !== null) clearTimeout(w.timer);
      w.reject(err);
    }
  }

  stats(): ReplicationStats {
    const visible = this.state === 'closed' ? this.publishedTxn : this.e.published.txnId;
    return { mode: this.mode, state: this.state, publishedTxn: this.publishedTxn, streamSeq: this.streamSeq, pending: Math.max(0, visible - this.publishedTxn), lastError: this.lastError, snapshots: this.snapshots, lastSnapshotTxn: this.lastSnapshotTxn };
  }

  /** Publishes what is visible now, then stops and disconnects. The database stays open (and writable, unless deposed). */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'running') {
      this.kick();
      await this.pumping?.catch(() => {});
    }
    this.dueSnapshot = null;
    await this.snapshotting;
    this.uninstall();
    this.state = 'closed';
    this.rejectWaiters(new NorthstarError('Closed', 'replication is closed'));
    await this.stream.nc.close().catch(() => {});
  }

  // ---- hooks on the database handle ----

  private install(): void {
    const e = this.e;
    e.logHold = () => (this.state === 'closed' ? null : this.nextPosition);
    // commitAsync's gate in quorum mode: the stream has the commit, or ReplicationUnavailable after quorumTimeoutMs.
    if (this.mode === 'quorum') e.commitGate = (txnId) => this.wait(txnId, this.quorumTimeoutMs);
    this.db.on('commit', this.onCommit);
    if (!listen(e, this.onCommit)) this.poll = setInterval(this.onCommit, POLL_MS).unref();
    this.kick();
  }

  private uninstall(): void {
    const e = this.e;
    e.logHold = null;
    e.commitGate = null;
    this.db.off('commit', this.onCommit);
    unlisten(e, this.onCommit);
    if (this.poll !== null) clearInterval(this.poll);
    this.poll = null;
  }

  private notPrimary(): NorthstarError {
    return new NorthstarError('NotPrimary', `${this.db.path}: another primary has appended to stream ${this.stream.name}; this database no longer publishes and refuses writes (reopen it as a replica)`);
  }

  // ---- publishing ----

  /** Makes the pump run (again, if it is running). */
  private kick(): void {
    if (this.state !== 'running') return;
    if (this.busy) {
      this.again = true;
      return;
    }
    // Set before pump() runs: its first steps follow other handles' commits, whose events kick again.
    this.busy = true;
    this.pumping = this.pump().finally(() => {
      this.busy = false;
      this.pumping = null;
      if (this.again && this.state === 'running') this.kick();
    });
  }

  private async pump(): Promise<void> {
    do {
      this.again = false;
      const e = this.e;
      if (e.closed) return;
      void this.db.txnId; // follows other handles' commits
      const visible = e.published.txnId;
      while (this.publishedTxn < visible && this.state === 'running') {
        const batch = this.readBatch(visible);
        if (batch.length === 0) break;
        await this.publishBatch(batch);
      }
    } while (this.again && this.state === 'running');
  }

  /** Up to maxInFlight commit records after the last acknowledged, up to txn `visible`, copied out of the log. */
  private readBatch(visible: number): Outgoing[] {
    const out: Outgoing[] = [];
    const it = this.e.log.scan(this.nextPosition);
    for (let s = it.next(); !s.done && out.length < this.maxInFlight; s = it.next()) {
      const r = s.value;
      if (r.txnId > visible) break;
      if (!isCommitRecord(r.bytes) || r.txnId <= this.publishedTxn) continue;
      const expected = (out.length === 0 ? this.publishedTxn : out[out.length - 1]!.txnId) + 1;
      if (r.txnId !== expected) throw new NorthstarError('Corrupt', `${this.e.log.path}: commit ${r.txnId} follows commit ${expected - 1} at position ${r.position}`);
      out.push({ txnId: r.txnId, end: r.position + r.length, bytes: r.bytes.slice(), stateHash: this.stateHash });
      this.stateHash = null;
    }
    return out;
  }

  /**
   * Publishes `batch` in order, all in flight at once, each expecting the
   * stream's last sequence to be the one before it; settles when every one is
   * acknowledged (retrying the unacknowledged rest with the same message ids)
   * or this primary is deposed.
   */
  private async publishBatch(batch: Outgoing[]): Promise<void> {
    // A record larger than a message may be goes in parts (§2.3), each expecting the sequence before it.
    const partBytes = Math.max(4096, (this.stream.nc.info?.max_payload ?? 1 << 20) - PART_HEADROOM);
    let from = 0;
    while (from < batch.length && this.state === 'running') {
      let expect = this.streamSeq;
      const sends: { m: Outgoing; parts: number; last: boolean; ack: Promise<{ seq: number }> }[] = [];
      for (const m of batch.slice(from)) {
        const n = Math.max(1, Math.ceil(m.bytes.length / partBytes));
        for (let i = 1; i <= n; i++) {
          const h = this.stream.headers();
          h.set(TXN_HEADER, String(m.txnId));
          if (n > 1) h.set(PART_HEADER, `${i}/${n}`);
          if (i === n && this.isCheckpoint(m.txnId)) h.set(CHECKPOINT_HEADER, '1');
          if (i === n && m.stateHash !== null) h.set(STATE_HASH_HEADER, m.stateHash);
          const data = n === 1 ? m.bytes : m.bytes.subarray((i - 1) * partBytes, i * partBytes);
          const msgID = n === 1 ? `${m.txnId}.${this.epoch}` : `${m.txnId}.${this.epoch}.${i}`;
          sends.push({ m, parts: n, last: i === n, ack: this.stream.js.publish(this.stream.subject, data, { msgID, expect: { lastSequence: expect++ }, headers: h, timeout: PUBLISH_TIMEOUT_MS }) });
        }
      }
      let failed: unknown = null;
      for (const send of sends) {
        try {
          const ack = await send.ack;
          if (failed !== null || !send.last) continue;
          this.acknowledged(send.m, ack.seq, send.parts);
          from++;
        } catch (err) {
          failed ??= err;
        }
      }
      if (failed !== null) {
        if (apiErrorCode(failed) === WRONG_LAST_SEQUENCE) {
          this.depose();
          return;
        }
        // Sent again from the first commit not acknowledged whole: parts JetStream has are dropped as duplicates (same ids).
        this.lastError = (failed as Error).message;
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }

  /** Commit `m`, sent in `parts` messages, is in the stream up to sequence `seq`. */
  private acknowledged(m: Outgoing, seq: number, parts: number): void {
    this.publishedTxn = m.txnId;
    this.streamSeq = seq;
    this.nextPosition = m.end;
    this.lastError = null;
    const snapshotDue = this.snapshotEveryTxns > 0 && m.txnId % this.snapshotEveryTxns === 0;
    if (snapshotDue) {
      // One at a time; one falling due meanwhile runs after it (the latest only).
      // The sequence of its first message: the stream is trimmed up to it, never into a commit's parts.
      this.dueSnapshot = { txnId: m.txnId, seq: seq - (parts - 1) };
      if (this.snapshotting === null) this.nextSnapshot();
    }
    if (this.isCheckpoint(m.txnId) && !snapshotDue) {
      // The checkpoint's hash, from the snapshot at it (still in the history: just committed), for a later message;
      // at a snapshot txn the snapshot computes it while it writes (one scan, not two).
      void snapshotHash(this.db, m.txnId).then(
        (h) => {
          if (h !== null) this.stateHash = `${m.txnId}:${h}`;
        },
        () => {},
      );
    }
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.txnId <= m.txnId) n++;
    if (n > 0) {
      for (const w of this.waiters.splice(0, n)) {
        if (w.timer !== null) clearTimeout(w.timer);
        w.resolve();
      }
    }
  }

  /** Whether txn `txnId` is a state-hash checkpoint (every hashEveryTxns commits). */
  private isCheckpoint(txnId: number): boolean {
    return this.hashEveryTxns > 0 && txnId % this.hashEveryTxns === 0;
  }

  private nextSnapshot(): void {
    const due = this.dueSnapshot;
    if (due === null || this.state === 'closed') return;
    this.dueSnapshot = null;
    this.snapshotting = this.snapshot(due.txnId, due.seq).finally(() => {
      this.snapshotting = null;
      this.nextSnapshot();
    });
  }

  /**
   * Stores the snapshot at txn `txnId` (stream sequence `seq`), then keeps
   * only the newest keepSnapshots and, once it has that many, trims the
   * stream up to the oldest kept (its own message stays, so the stream is
   * never empty). A failure is reported in lastError and retried at the next
   * snapshot txn.
   */
  private async snapshot(txnId: number, seq: number): Promise<void> {
    try {
      const bucket = (this.bucket ??= (await snapshotBucket(this.stream, { replicas: this.replicas }))!);
      const stored = await putSnapshot(bucket, this.db, txnId, seq);
      if (stored === null) return;
      if (this.isCheckpoint(txnId)) this.stateHash = `${txnId}:${stored.stateHash}`;
      this.snapshots++;
      this.lastSnapshotTxn = txnId;
      const all = await listSnapshots(bucket);
      const kept = all.slice(-this.keepSnapshots);
      for (const old of all.slice(0, all.length - kept.length)) await bucket.delete(old.name);
      // Only with a full set: before that, the oldest kept is the newest, and trimming to it would
      // leave a replica no time at all to catch up across the first snapshot (spec §3.5).
      if (kept.length >= this.keepSnapshots) await this.stream.jsm.streams.purge(this.stream.name, { seq: kept[0]!.seq });
    } catch (err) {
      this.lastError = `snapshot at txn ${txnId}: ${(err as Error).message}`;
    }
  }

  private depose(): void {
    this.state = 'deposed';
    const err = this.notPrimary();
    this.lastError = err.message;
    // New writes are refused; a commitAsync already past the fence meets the gate, which rejects with NotPrimary.
    this.e.writeFence = err;
    this.rejectWaiters(err);
  }
}

/**
 * Where publishing starts (spec §3.1): the stream must not be ahead of the
 * database (else another primary wrote: NotPrimary), its last record must be
 * this database's record of that txn (else the two diverged: NotPrimary), and
 * the log must still hold the first commit to publish (else
 * SnapshotNotFound: the database has history the stream never got and the
 * log no longer has).
 */
async function startPoint(db: Database, e: Engine, s: Stream): Promise<{ txnId: number; seq: number; position: number }> {
  const end = await streamEnd(s);
  const latest = db.txnId;
  if (end.lastTxn > latest) {
    throw new NorthstarError('NotPrimary', `stream ${s.name} holds commits up to txn ${end.lastTxn}, ${db.path} only up to ${latest}: another primary has written; open this database as a replica`);
  }
  let position: number | null = null;
  let last: Uint8Array | null = null;
  const it = e.log.scan(e.log.base);
  for (let r = it.next(); !r.done; r = it.next()) {
    if (!isCommitRecord(r.value.bytes)) continue;
    if (r.value.txnId === end.lastTxn) last = r.value.bytes.slice();
    if (r.value.txnId > end.lastTxn) {
      if (r.value.txnId !== end.lastTxn + 1) break;
      position = r.value.position;
      break;
    }
  }
  if (end.lastTxn > 0 && last !== null && end.lastRecord !== null) {
    if (!sameCommit(end.lastRecord, last, end.lastTxn, e.pager.kernels)) {
      throw new NorthstarError('NotPrimary', `stream ${s.name}'s txn ${end.lastTxn} is not ${db.path}'s: the two have diverged; open this database as a replica of the stream`);
    }
  }
  if (position === null) {
    if (latest === end.lastTxn) position = e.log.end;
    else throw new NorthstarError('SnapshotNotFound', `${e.log.path} no longer holds commit ${end.lastTxn + 1}, the first stream ${s.name} lacks: start from a stream that has this database's history`);
  }
  return { txnId: end.lastTxn, seq: end.lastSeq, position };
}

/** Publishes `db`'s commits to a JetStream stream (spec/replication_v0.md §3); see ReplicationOptions. */
export function startReplication(db: Database, options: ReplicationOptions): Promise<Replication> {
  return Replication.start(db, options);
}
