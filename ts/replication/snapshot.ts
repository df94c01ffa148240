// Checkpoint snapshots in a JetStream object store (spec/replication_v0.md
// §3.5, §4.5): the primary stores its state at a txn, a new replica starts
// from the newest and replays only the stream after it, and the stream is
// trimmed behind the oldest snapshot kept.
//
// An object `txn-<T>` in bucket `<stream>-snapshots` holds the state at txn
// T: every entry in key order as u32 key length, u32 value length, key,
// value (little-endian), then a trailer: u32 0xFFFFFFFF, u64 entry count,
// the 16 hex digits of the state hash (commit_record_v0 §8). Its metadata
// gives `txn` and `seq`, the stream sequence of txn T's message.

import type { ObjectStore } from '@nats-io/obj';
import type { Database } from '../db/database.js';
import { NorthstarError } from '../errors.js';
import { StateHash } from '../log/replay.js';
import type { WriteTxn } from '../txn/write.js';
import { readAt } from './hash.js';
import type { Stream } from './stream.js';

const SNAPSHOT_TRAILER_MARK = 0xffffffff;
const CHUNK = 1 << 20;

export interface SnapshotInfo {
  name: string;
  txn: number;
  seq: number;
  size: number;
}

/** A snapshot just stored, with the state hash its trailer holds. */
export interface StoredSnapshot extends SnapshotInfo {
  stateHash: string;
}

const bucketOf = (stream: string): string => `${stream}-snapshots`;

/** The snapshot bucket of the stream (created with `replicas` when `create`), or null when it does not exist. */
export async function snapshotBucket(s: Stream, create: { replicas: number } | null): Promise<ObjectStore | null> {
  let Objm: typeof import('@nats-io/obj').Objm;
  try {
    ({ Objm } = await import('@nats-io/obj'));
  } catch (err) {
    throw new NorthstarError('ReplicationUnavailable', 'replication snapshots need the NATS object store client: npm install @nats-io/obj', { cause: err });
  }
  const objm = new Objm(s.js);
  if (create !== null) return objm.create(bucketOf(s.name), { replicas: create.replicas });
  try {
    return await objm.open(bucketOf(s.name));
  } catch {
    return null;
  }
}

/** The snapshots in `bucket`, oldest first. */
export async function listSnapshots(bucket: ObjectStore): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = [];
  for (const o of await bucket.list()) {
    const txn = Number(o.metadata?.txn);
    const seq = Number(o.metadata?.seq);
    if (o.deleted || !/^txn-\d+$/.test(o.name) || !Number.isSafeInteger(txn) || !Number.isSafeInteger(seq)) continue;
    out.push({ name: o.name, txn, seq, size: o.size });
  }
  return out.sort((a, b) => a.txn - b.txn);
}

/**
 * Stores `db`'s snapshot at txn `txnId` (stream sequence `seq`) as object
 * txn-<txnId>, streaming it a chunk at a time from a read snapshot (so the
 * event loop turns between chunks). Null when the snapshot is no longer
 * retained (history).
 */
export async function putSnapshot(bucket: ObjectStore, db: Database, txnId: number, seq: number): Promise<StoredSnapshot | null> {
  const r = readAt(db, txnId);
  if (r === null) return null;
  const it = r.scan()[Symbol.iterator]();
  const h = new StateHash();
  let entries = 0;
  let done = false;
  // Each pull fills one buffer of at least CHUNK bytes (entries written in place, no buffer per entry).
  const TRAILER = 4 + 8 + 16;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (done) return;
      let chunk = Buffer.allocUnsafe(CHUNK + TRAILER);
      let used = 0;
      for (let s = it.next(); ; s = it.next()) {
        if (s.done) {
          chunk.writeUInt32LE(SNAPSHOT_TRAILER_MARK, used);
          chunk.writeBigUInt64LE(BigInt(entries), used + 4);
          chunk.write(h.toString(), used + 12, 'latin1');
          used += TRAILER;
          done = true;
          r.close();
          break;
        }
        const [k, v] = s.value;
        const need = 8 + k.length + v.length;
        if (used + need + TRAILER > chunk.length) {
          // A larger entry than the room left: the chunk grows to hold it (then this pull ends).
          const bigger = Buffer.allocUnsafe(used + need + TRAILER);
          chunk.copy(bigger, 0, 0, used);
          chunk = bigger;
        }
        chunk.writeUInt32LE(k.length, used);
        chunk.writeUInt32LE(v.length, used + 4);
        chunk.set(k, used + 8);
        chunk.set(v, used + 8 + k.length);
        // Key and value lie side by side here, as in a commit record: half the CRC calls, no tuple.
        h.addContiguous(chunk.subarray(used + 8, used + need), k.length);
        used += need;
        entries++;
        if (used >= CHUNK) break;
      }
      controller.enqueue(chunk.subarray(0, used));
      if (done) controller.close();
    },
    cancel() {
      r.close();
    },
  });
  try {
    const info = await bucket.put({ name: `txn-${txnId}`, metadata: { txn: String(txnId), seq: String(seq) } }, body);
    return { name: info.name, txn: txnId, seq, size: info.size, stateHash: h.toString() };
  } finally {
    if (!done) r.close();
  }
}

/**
 * Reads snapshot `info` into write transaction `w` (a new database at txn
 * info.txn − 1), checking the trailer's entry count and state hash: Corrupt
 * when the object is damaged or incomplete; nothing is committed here.
 */
export async function loadSnapshot(bucket: ObjectStore, info: SnapshotInfo, w: WriteTxn): Promise<{ entries: number; stateHash: string }> {
  const o = await bucket.get(info.name);
  if (o === null) throw new NorthstarError('SnapshotNotFound', `snapshot ${info.name} is no longer in its bucket`);
  const h = new StateHash();
  let entries = 0;
  let pending = Buffer.alloc(0);
  let trailer: { entries: number; hash: string } | null = null;
  const reader = o.data.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending = pending.length === 0 ? Buffer.from(value) : Buffer.concat([pending, value]);
    let at = 0;
    while (trailer === null && pending.length - at >= 8) {
      const kl = pending.readUInt32LE(at);
      if (kl === SNAPSHOT_TRAILER_MARK) {
        if (pending.length - at < 28) break;
        trailer = { entries: Number(pending.readBigUInt64LE(at + 4)), hash: pending.toString('latin1', at + 12, at + 28) };
        at += 28;
        break;
      }
      const vl = pending.readUInt32LE(at + 4);
      if (pending.length - at < 8 + kl + vl) break;
      const entry = pending.subarray(at + 8, at + 8 + kl + vl);
      w.put(entry.subarray(0, kl), entry.subarray(kl));
      h.addContiguous(entry, kl);
      entries++;
      at += 8 + kl + vl;
    }
    pending = pending.subarray(at);
  }
  const err = await o.error;
  if (err) throw new NorthstarError('Corrupt', `snapshot ${info.name}: ${err.message}`, { cause: err });
  if (trailer === null || pending.length !== 0) throw new NorthstarError('Corrupt', `snapshot ${info.name} is incomplete`);
  if (trailer.entries !== entries || trailer.hash !== h.toString()) {
    throw new NorthstarError('Corrupt', `snapshot ${info.name}: ${entries} entries hashing to ${h.toString()}, its trailer says ${trailer.entries} and ${trailer.hash}`);
  }
  return { entries, stateHash: trailer.hash };
}
