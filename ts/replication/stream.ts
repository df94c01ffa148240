// The replication stream in NATS JetStream (spec/replication_v0.md §2): one
// stream per replicated database, subject `<stream>.commits`, one message per
// commit holding the commit's log record as the log has it
// (commit_record_v0: self-describing, checksummed), its txn id in a header
// and, with the publisher's epoch, in the message id (JetStream drops a
// publisher's retried duplicate; see primary.ts for why not the txn id
// alone). The
// official NATS JavaScript client is loaded on first use, so a process that
// never replicates never loads it; without it installed, replication fails
// with ReplicationUnavailable saying what to install.

import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { NorthstarError } from '../errors.js';

/** Header carrying the commit's txn id (decimal), beside the message id. */
export const TXN_HEADER = 'Northstar-Txn';
/** Header on the message of a checkpoint txn (txn % hashEveryTxns = 0): both sides hash their snapshot at it. */
export const CHECKPOINT_HEADER = 'Northstar-Checkpoint';
/** Header `<txn>:<hash>`: the primary's state hash at an earlier checkpoint txn, on a later message. */
export const STATE_HASH_HEADER = 'Northstar-State-Hash';
/** Header `<i>/<n>` on each message of a commit whose record is split over n messages (absent: one message). */
export const PART_HEADER = 'Northstar-Part';
/** JetStream's error code for a publish whose expected last sequence is not the stream's: another primary appended. */
export const WRONG_LAST_SEQUENCE = 10071;

export const DEFAULT_STREAM_REPLICAS = 3;
/** Stream limit on stored bytes: the oldest records go first past it (default 1 GiB). */
export const DEFAULT_STREAM_MAX_BYTES = 1 << 30;
/** How long a connection and the stream's setup may take before ReplicationUnavailable (default 30 s). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Where the stream is and how it is made. */
export interface StreamOptions {
  /** NATS server URLs (nats://host:port), or one URL. */
  servers: string[] | string;
  /** The stream's name (letters, digits, - and _). */
  stream: string;
  /** JetStream replicas of the stream when this call creates it (default 3: R3). */
  replicas?: number;
  /** The stream's byte limit when this call creates it (default 1 GiB; the oldest records are dropped past it). */
  maxBytes?: number;
  /** Connection and setup deadline, ms (default 30 s). */
  connectTimeoutMs?: number;
}

export interface Stream {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly name: string;
  readonly subject: string;
  readonly headers: typeof import('@nats-io/transport-node').headers;
}

/** The options, checked: InvalidArgument for anything unusable. */
export function checkStreamOptions(o: StreamOptions): Required<StreamOptions> & { servers: string[] } {
  if (o === null || typeof o !== 'object') throw new NorthstarError('InvalidArgument', 'replication options must be an object');
  const servers = typeof o.servers === 'string' ? [o.servers] : o.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new NorthstarError('InvalidArgument', 'servers must be a NATS URL or a non-empty array of them');
  }
  if (typeof o.stream !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(o.stream)) throw new NorthstarError('InvalidArgument', 'stream must be 1-200 letters, digits, - or _');
  const replicas = o.replicas ?? DEFAULT_STREAM_REPLICAS;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new NorthstarError('InvalidArgument', 'replicas must be an integer from 1 to 5');
  const maxBytes = o.maxBytes ?? DEFAULT_STREAM_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 << 20) throw new NorthstarError('InvalidArgument', 'maxBytes must be an integer of at least 1 MiB');
  const connectTimeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (typeof connectTimeoutMs !== 'number' || !(connectTimeoutMs > 0)) throw new NorthstarError('InvalidArgument', 'connectTimeoutMs must be a positive number of milliseconds');
  return { servers, stream: o.stream, replicas, maxBytes, connectTimeoutMs };
}

async function client(): Promise<{ nats: typeof import('@nats-io/transport-node'); jetstream: typeof import('@nats-io/jetstream') }> {
  try {
    return { nats: await import('@nats-io/transport-node'), jetstream: await import('@nats-io/jetstream') };
  } catch (err) {
    throw new NorthstarError('ReplicationUnavailable', 'replication needs the NATS client: npm install @nats-io/transport-node @nats-io/jetstream @nats-io/obj', { cause: err });
  }
}

/**
 * Connects to the servers (reconnecting for ever afterwards) and makes sure
 * the stream exists, creating it with `replicas` and `maxBytes` when it does
 * not. Retries while the cluster elects its JetStream leaders, up to
 * connectTimeoutMs; then ReplicationUnavailable.
 */
export async function openStream(options: StreamOptions): Promise<Stream> {
  const o = checkStreamOptions(options);
  const { nats, jetstream } = await client();
  const deadline = Date.now() + o.connectTimeoutMs;
  let nc: NatsConnection | null = null;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      nc ??= await nats.connect({ servers: o.servers, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: Math.min(5_000, o.connectTimeoutMs), name: `northstar:${o.stream}` });
      const jsm = await jetstream.jetstreamManager(nc, { timeout: 2_000 });
      const subject = `${o.stream}.commits`;
      try {
        await jsm.streams.info(o.stream);
      } catch (err) {
        if (!isStreamNotFound(err)) throw err;
        await jsm.streams.add({ name: o.stream, subjects: [subject], num_replicas: o.replicas, max_bytes: o.maxBytes, duplicate_window: 120_000_000_000 });
      }
      return { nc, js: jetstream.jetstream(nc, { timeout: 5_000 }), jsm, name: o.stream, subject, headers: nats.headers };
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await nc?.close().catch(() => {});
  throw new NorthstarError('ReplicationUnavailable', `stream ${o.stream} on ${o.servers.join(',')} not reachable in ${o.connectTimeoutMs} ms: ${(last as Error)?.message ?? 'no answer'}`, { cause: last });
}

function isStreamNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: string; apiError?: () => { err_code?: number } };
  return e.apiError?.().err_code === 10059 || /stream not found/i.test(e.message ?? '');
}

/** The JetStream API error code of `err`, if it is one. */
export function apiErrorCode(err: unknown): number | null {
  const e = err as { apiError?: () => { err_code?: number } };
  return typeof e.apiError === 'function' ? (e.apiError().err_code ?? null) : null;
}

/** Part `i` of `n` of a message's commit: [1, 1] for a commit in one message. */
export function partOf(value: string | undefined): [number, number] {
  if (value === undefined || value === '') return [1, 1]; // (the client gives '' for a header not there)
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const i = Number(m?.[1]);
  const n = Number(m?.[2]);
  if (m === null || i < 1 || i > n) throw new NorthstarError('Corrupt', `replication stream message with a bad ${PART_HEADER} header (${value})`);
  return [i, n];
}

/**
 * The stream's first and last sequence, and its last complete commit: txn
 * id (0 when none), the sequence of its last message, and its record (its
 * parts joined). Trailing parts of a commit whose publisher died before its
 * last part are not a commit: they are skipped (§2.3).
 */
export async function streamEnd(s: Stream): Promise<{ firstSeq: number; lastSeq: number; messages: number; lastTxn: number; lastRecord: Uint8Array | null }> {
  const { first_seq: firstSeq, last_seq: lastSeq, messages } = (await s.jsm.streams.info(s.name)).state;
  let seq = messages === 0 ? 0 : lastSeq;
  while (seq >= firstSeq && seq > 0) {
    const m = await messageAt(s, seq);
    const [i, n] = partOf(m.header?.get(PART_HEADER));
    if (i < n) {
      seq -= i; // a commit's first parts, its last never published
      continue;
    }
    const parts = [m.data];
    for (let k = 1; k < n; k++) parts.unshift((await messageAt(s, seq - k)).data);
    return { firstSeq, lastSeq, messages, lastTxn: txnOf(m.header?.get(TXN_HEADER)), lastRecord: n === 1 ? m.data : Buffer.concat(parts) };
  }
  return { firstSeq, lastSeq, messages, lastTxn: 0, lastRecord: null };
}

/** The stored message at `seq`; SnapshotNotFound when the stream no longer has it (its limits dropped it). */
async function messageAt(s: Stream, seq: number): Promise<StoredMsg> {
  const m = await s.jsm.streams.getMessage(s.name, { seq });
  if (m === null) throw new NorthstarError('SnapshotNotFound', `stream ${s.name} no longer holds sequence ${seq}`);
  return m;
}

/** The txn id of the message at `seq`. */
export async function txnAt(s: Stream, seq: number): Promise<number> {
  return txnOf((await messageAt(s, seq)).header?.get(TXN_HEADER));
}

export function txnOf(h: string | undefined): number {
  const n = Number(h);
  if (h === undefined || !Number.isSafeInteger(n) || n < 1) throw new NorthstarError('Corrupt', `replication stream message without a valid ${TXN_HEADER} header (${String(h)})`);
  return n;
}

/**
 * The sequence of the first message whose txn is after `txnId`, or lastSeq + 1
 * when there is none: a binary search (txn ids increase with the sequence,
 * one message per commit), O(log n) reads.
 */
export async function seqAfterTxn(s: Stream, txnId: number, firstSeq: number, lastSeq: number): Promise<number> {
  let lo = firstSeq;
  let hi = lastSeq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    let txn: number;
    try {
      txn = await txnAt(s, mid);
    } catch (err) {
      // The primary trimmed the stream meanwhile: everything before its new first sequence is gone.
      if (!(err instanceof NorthstarError && err.code === 'SnapshotNotFound')) throw err;
      const first = (await s.jsm.streams.info(s.name)).state.first_seq;
      if (first <= mid) throw err;
      lo = Math.min(first, hi);
      continue;
    }
    if (txn > txnId) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
