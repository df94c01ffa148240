// A peer: one database handle in a child process or a worker thread, driven by
// ts/testing/peers.ts for the multi-process tests (ts/db.processes.test.ts).
// It runs compiled (dist/testing/peer.js) and does one request at a time:
// requests and replies are JSON, one per line on stdin/stdout in a process
// (written with fs.writeSync, so a reply is in the pipe before the next step and
// a SIGKILL loses none already sent), or messages on the worker's port.
//
// The long-running requests (bankWriter, bankReader, rotate, churn) are loops
// that keep the peer busy until they finish or a stop file appears; their
// checks run inside the peer and come back as a list of problems, so a torn
// read shows as a message naming the snapshot, not as a bare mismatch.

import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { open, type Database, type OpenOptions } from '../db/index.js';
import { openQueue } from '../queue/index.js';
import { NorthstarError } from '../errors.js';
import { rng } from './rng.js';
import { setFailpointHook, type FailpointName } from '../io/failpoint.js';
import { implementation } from '../native/kernels.js';
import type { ReadTxn } from '../txn/read.js';
import type { WriteTxn } from '../txn/write.js';

/** A request: `op` names a handler below, the rest are its arguments. */
export interface Request {
  op: string;
  [arg: string]: unknown;
}

/** The answer to a request: its value, or the error it threw (a NorthstarError's code, else 'Error'). */
export type PeerAnswer = { reply: unknown } | { error: { code: string; message: string } };
/** Something a peer reports while a request runs ('ack' of a commit), or 'ready' once it listens. */
export type PeerEvent = { event: string; [field: string]: unknown };
/** One line or message from a peer. */
export type PeerMessage = PeerAnswer | PeerEvent;

/** Workers get this as workerData; a process is told by running as the main module. */
export const PEER_WORKER_DATA = 'northstar-peer';

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms);

// ---- the bank: N accounts whose balances always sum to the same total ---------------------------

export const acct = (i: number): string => `acct:${String(i).padStart(4, '0')}`;
/** The log key of a transfer: its txn id, so a snapshot at txn T holds exactly T - T0 of them. */
export const logKey = (txnId: number): string => `log:${String(txnId).padStart(8, '0')}`;

/** What one full scan of a bank snapshot shows. */
interface BankScan {
  text: string;
  sum: number;
  accounts: number;
  logs: number;
}

function scanBank(r: ReadTxn): BankScan {
  const parts: string[] = [];
  let sum = 0;
  let accounts = 0;
  let logs = 0;
  for (const [k, v] of r.scan()) {
    const key = k.toString('latin1');
    const value = v.toString('latin1');
    parts.push(key, value);
    if (key.startsWith('acct:')) {
      sum += Number(value);
      accounts++;
    } else if (key.startsWith('log:')) logs++;
  }
  return { text: parts.join('\n'), sum, accounts, logs };
}

// ---- the handle and its requests ----------------------------------------------------------------

let db: Database | null = null;
let writer: WriteTxn | null = null;
const held: ReadTxn[] = [];

function handle(): Database {
  if (db === null) throw new Error('peer: no database open');
  return db;
}

function stopped(stopFile: unknown, deadline: number): boolean {
  return Date.now() >= deadline || (typeof stopFile === 'string' && fs.existsSync(stopFile));
}

function errorText(err: unknown): string {
  return err instanceof NorthstarError ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
}

const handlers: Record<string, (req: Request, emit: (event: string, fields: object) => void) => unknown> = {
  open(req) {
    db = open(req.path as string, (req.options ?? {}) as OpenOptions);
    return { pid: process.pid, isMainThread, implementation, coordination: db.stats().coordination, txnId: db.txnId };
  },

  close() {
    for (const r of held.splice(0)) r.close();
    writer = null;
    db?.close();
    db = null;
    return null;
  },

  /** Kills this process with SIGKILL the `hit`-th time the named crash window is passed. */
  killAt(req) {
    let hits = 0;
    setFailpointHook((name: FailpointName) => {
      if (name === req.name && ++hits === req.hit) process.kill(process.pid, 'SIGKILL');
    });
    return null;
  },

  beginWrite(req) {
    const t0 = performance.now();
    writer = handle().beginWrite(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs as number });
    return { waitedMs: performance.now() - t0, txnId: writer.txnId };
  },

  put(req) {
    if (writer === null) throw new Error('peer: no write transaction');
    for (const [k, v] of req.entries as Array<[string, string]>) writer.put(k, v);
    return null;
  },

  commit() {
    if (writer === null) throw new Error('peer: no write transaction');
    const w = writer;
    writer = null;
    return w.commit();
  },

  abort() {
    writer?.abort();
    writer = null;
    return null;
  },

  /** beginWrite, puts, commit: the txn id and how long beginWrite waited for the lock. */
  write(req, emit) {
    const t0 = performance.now();
    const w = handle().beginWrite(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs as number });
    const waitedMs = performance.now() - t0;
    try {
      for (const [k, v] of req.entries as Array<[string, string]>) w.put(k, v);
    } catch (err) {
      w.abort();
      throw err;
    }
    const txnId = w.commit();
    emit('ack', { txnId });
    return { txnId, waitedMs };
  },

  /**
   * db.write(): waits for the writer without blocking (beginWriteAsync), emits
   * 'asked' as soon as its place in the writer queue is taken, then appends
   * `id` to the value of key `order` and commits. Replies with the txn id.
   */
  writeQueued(req, emit) {
    const id = String(req.id);
    const done = handle().write(
      (w) => {
        const before = w.get('order')?.toString('latin1');
        w.put('order', before === undefined ? id : `${before},${id}`);
        return w.txnId;
      },
      req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs as number },
    );
    emit('asked', { id });
    return done;
  },

  /** A snapshot kept open until release: its txn id. */
  hold(req) {
    const r = handle().beginRead(req.txnId === undefined ? {} : { txnId: req.txnId as number });
    held.push(r);
    return r.txnId;
  },

  release() {
    for (const r of held.splice(0)) r.close();
    return null;
  },

  /** Values of `keys` (null when absent) in the latest snapshot or at `txnId`. */
  read(req) {
    const r = handle().beginRead(req.txnId === undefined ? {} : { txnId: req.txnId as number });
    try {
      return { txnId: r.txnId, values: (req.keys as string[]).map((k) => r.get(k)?.toString('latin1') ?? null) };
    } finally {
      r.close();
    }
  },

  /** Every entry of the latest snapshot or of `txnId`, as [key, value] strings. */
  scan(req) {
    const r = handle().beginRead(req.txnId === undefined ? {} : { txnId: req.txnId as number });
    try {
      return { txnId: r.txnId, entries: [...r.scan()].map(([k, v]) => [k.toString('latin1'), v.toString('latin1')]) };
    } finally {
      r.close();
    }
  },

  stats() {
    const s = handle().stats();
    return { txnId: s.txnId, pageCount: s.pageCount, pendingPages: s.pendingPages, freePages: s.freePages, readers: s.readers, coordination: s.coordination };
  },

  /**
   * `transfers` bank transfers, each its own write transaction taken with
   * `timeoutMs`: moves a random amount between two accounts and writes the
   * transfer under logKey(txnId). An 'ack' event goes out as soon as commit()
   * returns; a pause of 0..pauseMs between transfers lets the other writers in.
   */
  bankWriter(req, emit) {
    const d = handle();
    const n = req.accounts as number;
    const rand = rng(req.seed as number);
    const acked: number[] = [];
    for (let i = 0; i < (req.transfers as number); i++) {
      const w = d.beginWrite({ timeoutMs: req.timeoutMs as number });
      let txnId: number;
      try {
        const a = Math.floor(rand() * n);
        const b = (a + 1 + Math.floor(rand() * (n - 1))) % n;
        const balA = Number(w.get(acct(a))!.toString('latin1'));
        const balB = Number(w.get(acct(b))!.toString('latin1'));
        const amount = Math.floor(rand() * (balA + 1));
        w.put(acct(a), String(balA - amount));
        w.put(acct(b), String(balB + amount));
        w.put(logKey(w.txnId), `${req.tag as string}:${i}:${a}>${b}:${amount}`);
        const expected = w.txnId;
        txnId = w.commit();
        if (txnId !== expected) throw new Error(`commit returned txn ${txnId}, the transaction said ${expected}`);
      } catch (err) {
        if (!w.isClosed) w.abort();
        throw err;
      }
      acked.push(txnId);
      emit('ack', { txnId, tag: req.tag, i });
      sleep(Math.floor(rand() * ((req.pauseMs as number) + 1)));
    }
    return { acked };
  },

  /**
   * Reads bank snapshots until the stop file appears: in each, the balances sum
   * to `total`, two full scans are identical, there is one log key per commit
   * since `baseTxn`, and the latest snapshot never goes back. Every fourth one
   * also travels back a few commits and checks that snapshot the same way.
   */
  bankReader(req) {
    const d = handle();
    const deadline = Date.now() + (req.maxMs as number);
    const problems: string[] = [];
    const problem = (s: string): void => void (problems.length < 20 && problems.push(s));
    const rand = rng(req.seed as number);
    let last = 0;
    let snapshots = 0;
    let distinct = 0;
    let travels = 0;
    const check = (r: ReadTxn, what: string): void => {
      const s1 = scanBank(r);
      const s2 = scanBank(r);
      if (s1.text !== s2.text) problem(`${what} txn ${r.txnId}: two scans differ`);
      if (s1.sum !== req.total) problem(`${what} txn ${r.txnId}: balances sum to ${s1.sum}, not ${req.total as number}`);
      if (s1.accounts !== req.accounts) problem(`${what} txn ${r.txnId}: ${s1.accounts} accounts`);
      if (s1.logs !== r.txnId - (req.baseTxn as number)) problem(`${what} txn ${r.txnId}: ${s1.logs} log keys, expected ${r.txnId - (req.baseTxn as number)}`);
      const i = Math.floor(rand() * (req.accounts as number));
      const got = r.get(acct(i))?.toString('latin1');
      const inScan = s1.text.split('\n');
      const at = inScan.indexOf(acct(i));
      if (got === undefined || inScan[at + 1] !== got) problem(`${what} txn ${r.txnId}: get(${acct(i)}) = ${got}, the scan says ${inScan[at + 1]}`);
    };
    while (!stopped(req.stopFile, deadline)) {
      try {
        const r = d.beginRead();
        try {
          snapshots++;
          if (r.txnId < last) problem(`snapshot went back from txn ${last} to ${r.txnId}`);
          if (r.txnId !== last) distinct++;
          last = r.txnId;
          check(r, 'latest');
        } finally {
          r.close();
        }
        if (snapshots % 4 === 0 && last - (req.baseTxn as number) > 1) {
          const back = last - 1 - Math.floor(rand() * Math.min(8, last - (req.baseTxn as number) - 1));
          const t = d.beginRead({ txnId: back });
          try {
            travels++;
            if (t.txnId !== back) problem(`beginRead({ txnId: ${back} }) gave txn ${t.txnId}`);
            check(t, 'time travel to');
          } finally {
            t.close();
          }
        }
      } catch (err) {
        problem(`threw: ${errorText(err)}`);
      }
    }
    return { snapshots, distinct, travels, last, problems };
  },

  /**
   * The steady update workload: `commits` commits that each rewrite
   * `perCommit` random keys of `keys` (values `valueSize` bytes). Before
   * each commit it waits while the oldest snapshot any handle holds is
   * `maxLag` or more commits old: the readers (rotate) let go after at most
   * that many, so every held snapshot spans a bounded number of commits,
   * however the threads are scheduled. Returns the page count after every commit.
   */
  churn(req) {
    const d = handle();
    const rand = rng(req.seed as number);
    const deadline = Date.now() + (req.maxMs as number);
    const maxLag = req.maxLag as number;
    const pageCounts: number[] = [];
    let stalls = 0;
    const pad = 'x'.repeat(req.valueSize as number);
    for (let c = 0; c < (req.commits as number); c++) {
      for (let s = d.stats(); s.txnId - (s.readers.oldestTxnId ?? s.txnId) >= maxLag; s = d.stats()) {
        if (Date.now() > deadline) throw new Error(`churn: readers held snapshot ${s.readers.oldestTxnId} of ${s.txnId} past the deadline`);
        stalls++;
        sleep(1);
      }
      const w = d.beginWrite({ timeoutMs: 5000 });
      for (let i = 0; i < (req.perCommit as number); i++) {
        const k = Math.floor(rand() * (req.keys as number));
        w.put(`key:${String(k).padStart(5, '0')}`, `${w.txnId}:${pad}`);
      }
      w.commit();
      pageCounts.push(d.stats().pageCount);
    }
    return { pageCounts, stalls, txnId: d.txnId };
  },

  /**
   * Task-queue agents (spec/task_queue_v0.md): `agents` concurrent claimers
   * on queue `queue` of this handle, each claiming one task at a time
   * (waitMs 200) and completing it, until a claim finds nothing, `total`
   * tasks were enqueued and none is pending or claimed. Returns every completion as
   * [task id, token] (the parent's ledger counts duplicates and losses).
   */
  async queueAgents(req) {
    const q = openQueue(handle(), req.queue as string);
    const done: Array<[number, number]> = [];
    const agent = async (n: number): Promise<void> => {
      for (;;) {
        const [t] = await q.claim({ worker: `${process.pid}:${n}`, leaseMs: 60_000, waitMs: 200 });
        if (t === undefined) {
          const s = q.stats();
          if (s.enqueued >= (req.total as number) && s.counts.pending + s.counts.claimed === 0) return;
          continue;
        }
        await q.complete(t, { by: `${process.pid}:${n}` });
        done.push([t.id, t.token]);
      }
    };
    await Promise.all(Array.from({ length: req.agents as number }, (_, n) => agent(n)));
    await q.close();
    return { done };
  },

  /**
   * Rotating long-lived reader: holds the latest snapshot until the database
   * is `holdCommits` commits past it, scanning it at the start and at the end
   * (the two must be identical: its pages were not reused meanwhile), then
   * releases it and takes the next, until the stop file appears.
   */
  rotate(req) {
    const d = handle();
    const deadline = Date.now() + (req.maxMs as number);
    const problems: string[] = [];
    let holds = 0;
    let last = 0;
    const digest = (r: ReadTxn): string => {
      const parts: string[] = [];
      for (const [k, v] of r.scan()) parts.push(k.toString('latin1'), v.toString('latin1'));
      return parts.join('\n');
    };
    while (!stopped(req.stopFile, deadline) && problems.length < 20) {
      try {
        const r = d.beginRead();
        try {
          holds++;
          if (r.txnId < last) problems.push(`snapshot went back from txn ${last} to ${r.txnId}`);
          last = r.txnId;
          const before = digest(r);
          const until = r.txnId + (req.holdCommits as number);
          while (d.txnId < until && !stopped(req.stopFile, deadline)) sleep(1);
          if (digest(r) !== before) problems.push(`snapshot ${r.txnId} changed while held`);
        } finally {
          r.close();
        }
      } catch (err) {
        problems.push(`threw: ${errorText(err)}`);
      }
    }
    return { holds, last, problems };
  },
};

// ---- transport ----------------------------------------------------------------------------------

function serve(send: (m: PeerMessage) => void, req: Request): void {
  const emit = (event: string, fields: object): void => send({ event, ...fields });
  let answer: PeerAnswer;
  try {
    const h = handlers[req.op];
    if (h === undefined) throw new Error(`peer: unknown op ${req.op}`);
    const reply = h(req, emit);
    if (reply instanceof Promise) {
      // An asynchronous request answers when it settles; the peer serves others meanwhile.
      reply.then(
        (value: unknown) => send({ reply: value ?? null }),
        (err: unknown) => send({ error: { code: err instanceof NorthstarError ? err.code : 'Error', message: errorText(err) } }),
      );
      return;
    }
    answer = { reply: reply ?? null };
  } catch (err) {
    answer = { error: { code: err instanceof NorthstarError ? err.code : 'Error', message: errorText(err) } };
  }
  // After the microtasks the request queued (a handle raises its reader slot in one when a
  // snapshot closes): what the reply reports has then reached the lock file.
  queueMicrotask(() => send(answer));
}

function runAsProcess(): void {
  const send = (m: PeerMessage): void => void fs.writeSync(1, `${JSON.stringify(m)}\n`);
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const req = JSON.parse(line) as Request;
      if (req.op === 'exit') process.exit(0);
      serve(send, req);
    }
  });
  // The parent closing our stdin (it exited, or is done with us) ends the peer.
  process.stdin.on('end', () => process.exit(0));
  send({ event: 'ready', pid: process.pid });
}

function runAsWorker(): void {
  const port = parentPort!;
  const send = (m: PeerMessage): void => port.postMessage(m);
  port.on('message', (req: Request) => {
    if (req.op === 'exit') {
      port.close();
      return;
    }
    serve(send, req);
  });
  send({ event: 'ready', pid: process.pid });
}

if (!isMainThread && workerData === PEER_WORKER_DATA) runAsWorker();
else if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url)) runAsProcess();
