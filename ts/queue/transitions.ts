// The task state machine (spec/task_queue_v0.md §4): every transition as the
// writes it makes inside one write transaction. Each checks everything first
// and writes only once nothing can refuse it, so a refused call (LeaseLost,
// InvalidArgument) leaves the transaction as it was and the other calls of
// the same batch go on.
//
//   enqueue           -> pending (ready, or delayed until readyAt)
//   pending  --claim--> claimed            (token = next fencing token, attempt + 1)
//   claimed  --complete--> done
//   claimed  --fail--> pending (retry at now + retryInMs) | dead (attempt >= maxAttempts)
//   claimed  --lease expires, found by a claim--> pending | dead
//   claimed  --renew--> claimed            (leaseUntil moves; same token)
//   pending | claimed --cancel--> cancelled
//   claimed | dead | cancelled --requeue--> pending (attempt 0)
//   done | dead | cancelled --purge, retention--> gone

import { NorthstarError } from '../errors.js';
import type { WriteTxn } from '../txn/write.js';
import { idempotencyKeyBytes, MAX_PRIORITY, MIN_PRIORITY, readU64, TAG_DELAYED, TAG_FINISHED, TAG_LEASE, TAG_READY, typeBytes, u64Value, type QueueKeys } from './keys.js';
import { before, firstHead, nextHead, readyTypes, type Head, type ReadyEntry, type ReadySource, type ReadyView } from './ready.js';
import { decodeTask, encodeTask, toBlob, TaskState, type Blob, type TaskRecord } from './task.js';

/** What a queue's transitions need to know about it. */
export interface QueueCore {
  readonly keys: QueueKeys;
  readonly name: string;
  readonly maxPayloadBytes: number;
  readonly defaultMaxAttempts: number;
  /** Where claims find ready tasks besides the tree (a cartridge), or null: see ready.ts. */
  readonly readySource: ReadySource | null;
}

/** A task to enqueue (q.enqueue). */
export interface EnqueueSpec {
  type: string;
  payload?: unknown;
  priority?: number;
  delayMs?: number;
  /** Idempotency key: enqueueing a live task's key again returns that task's id. */
  key?: string;
  maxAttempts?: number;
}

/** The task a claim handed out, as complete, fail and renew need it. */
export interface ClaimRef {
  id: number;
  token: number;
}

/** Counters of a queue (C keys). */
const COUNTERS = ['seq', 'token', 'claims', 'completions', 'finished'] as const;
type CounterName = (typeof COUNTERS)[number];
/** Index of each counter in COUNTERS, and so in QueueTxn's array and bit mask. */
const COUNTER_INDEX = Object.fromEntries(COUNTERS.map((name, i) => [name, i])) as Readonly<Record<CounterName, number>>;

/**
 * One write transaction's view of a queue: the transitions, and the counts
 * and counters they change, written once at the end (flush) instead of by
 * every call of a batch.
 */
export class QueueTxn {
  /** Counter values by COUNTER_INDEX, read at first use (NaN: not read yet). */
  private readonly counters: number[] = COUNTERS.map(() => NaN);
  /** Counters this transaction changed, a bit each by COUNTER_INDEX (flush writes only these: a batch of refused calls writes nothing). */
  private bumped = 0;
  private readonly countDeltas = new Map<string, { state: number; type: Buffer; delta: number }>();
  /** advanceTime ran in this transaction: `now` is fixed, so once finds everything due. */
  advanced = false;
  /**
   * The ready index's head of each type as this transaction last saw it
   * (null: empty), and whether the list of types with ready tasks is known:
   * the claims of one batch continue where the last one stopped instead of
   * seeking again. place() forgets a type's head when it adds to it.
   */
  readonly heads = new Map<string, Head | null>();
  typesKnown = false;
  /** Ready entries place() added, by type: with a ready view, the ones the view (exact at the base txn) cannot know. */
  readonly placed = new Map<string, ReadyEntry[]>();
  /** The ready view at this transaction's base txn: undefined until asked for, null when there is none. */
  private view: ReadyView | null | undefined = undefined;

  constructor(
    readonly w: WriteTxn,
    readonly q: QueueCore,
    /** The queue clock's time for this transaction (ms). */
    readonly now: number,
  ) {}

  // ---- counters and counts ----

  counter(name: CounterName): number {
    return this.counterAt(COUNTER_INDEX[name]);
  }

  bump(name: CounterName, delta = 1): number {
    const i = COUNTER_INDEX[name];
    const v = this.counterAt(i) + delta;
    this.counters[i] = v;
    this.bumped |= 1 << i;
    return v;
  }

  /** Counter COUNTERS[i], read from the tree at its first use in this transaction. */
  private counterAt(i: number): number {
    let v = this.counters[i]!;
    if (v !== v) {
      const raw = this.w.get(this.q.keys.counter(COUNTERS[i]!));
      v = raw === undefined ? 0 : readU64(raw, 0);
      this.counters[i] = v;
    }
    return v;
  }

  count(state: number, type: string, delta: number): void {
    const k = `${state}\u0000${type}`;
    const c = this.countDeltas.get(k);
    if (c) c.delta += delta;
    else this.countDeltas.set(k, { state, type: Buffer.from(type, 'utf8'), delta });
  }

  /** Writes the counters and counts this transaction changed. */
  flush(): void {
    const keys = this.q.keys;
    for (let i = 0; i < COUNTERS.length; i++) if ((this.bumped & (1 << i)) !== 0) this.w.put(keys.counter(COUNTERS[i]!), u64Value(this.counters[i]!));
    this.bumped = 0;
    for (const c of this.countDeltas.values()) {
      if (c.delta === 0) continue;
      const key = keys.count(c.state, c.type);
      const raw = this.w.get(key);
      const n = (raw === undefined ? 0 : readU64(raw, 0)) + c.delta;
      if (n < 0) throw new NorthstarError('Corrupt', `queue ${this.q.name}: count of state ${c.state} type ${c.type} would go below 0`);
      if (n === 0) this.w.del(key);
      else this.w.put(key, u64Value(n));
    }
    this.countDeltas.clear();
  }

  // ---- records and indexes ----

  read(id: number): TaskRecord | undefined {
    const v = this.w.get(this.q.keys.task(id));
    return v === undefined ? undefined : decodeTask(v, this.q.name);
  }

  write(t: TaskRecord): void {
    t.updatedAt = this.now;
    this.w.put(this.q.keys.task(t.id), encodeTask(t));
  }

  /** Puts a pending task in the ready index (and the age index), or the delayed index when it may not run yet. */
  place(t: TaskRecord): void {
    const keys = this.q.keys;
    if (t.readyAt > this.now) this.w.put(keys.delayed(t.readyAt, t.id), EMPTY);
    else {
      this.w.put(keys.ready(Buffer.from(t.type, 'utf8'), t.priority, t.readyAt, t.id), EMPTY);
      this.w.put(keys.age(t.readyAt, t.id), EMPTY);
      this.heads.delete(t.type);
      this.typesKnown = false;
      if (this.q.readySource !== null) {
        const entry = { rank: MAX_PRIORITY - t.priority, readyAt: t.readyAt, id: t.id };
        const list = this.placed.get(t.type);
        if (list === undefined) this.placed.set(t.type, [entry]);
        else list.push(entry);
      }
    }
  }

  /** The queue's ready view exact at the txn this transaction started from (its commits so far are not in it), or null. */
  readyView(): ReadyView | null {
    if (this.view === undefined) this.view = this.q.readySource?.viewAt(this.w.txnId - 1) ?? null;
    return this.view;
  }

  /** Takes a pending task out of whichever index place() put it in. */
  unplace(t: TaskRecord): void {
    const keys = this.q.keys;
    if (this.w.del(keys.delayed(t.readyAt, t.id))) return;
    this.w.del(keys.ready(Buffer.from(t.type, 'utf8'), t.priority, t.readyAt, t.id));
    this.w.del(keys.age(t.readyAt, t.id));
    this.heads.delete(t.type);
    this.typesKnown = false;
  }

  /** A task reaches done, dead or cancelled: the finished index, its key freed, the counts. */
  finish(t: TaskRecord, state: number): void {
    const from = t.state;
    t.state = state;
    t.finishedAt = this.now;
    t.leaseUntil = 0;
    this.w.put(this.q.keys.finished(t.finishedAt, t.id), EMPTY);
    if (t.key !== '') this.releaseKey(t);
    this.count(from, t.type, -1);
    this.count(state, t.type, +1);
    this.bump('finished');
  }

  private releaseKey(t: TaskRecord): void {
    const k = this.q.keys.idempotency(Buffer.from(t.key, 'utf8'));
    const held = this.w.get(k);
    if (held !== undefined && readU64(held, 0) === t.id) this.w.del(k);
  }

  /** The task a claim handed out, if that claim is still its current one; LeaseLost otherwise. */
  current(ref: ClaimRef, what: string): TaskRecord {
    checkRef(ref);
    const t = this.read(ref.id);
    if (t === undefined) throw new NorthstarError('InvalidArgument', `${what}: no task ${ref.id} in queue ${this.q.name}`);
    if (t.state !== TaskState.claimed || t.token !== ref.token) {
      throw new NorthstarError('LeaseLost', `${what}: task ${ref.id} is no longer held by token ${ref.token} (${describeHolder(t)})`);
    }
    return t;
  }
}

const EMPTY = new Uint8Array(0);

function describeHolder(t: TaskRecord): string {
  if (t.state === TaskState.claimed) return `claimed again, token ${t.token}`;
  return ['pending', 'claimed', 'done', 'dead', 'cancelled'][t.state]!;
}

function checkRef(ref: ClaimRef): void {
  if (ref === null || typeof ref !== 'object' || !Number.isSafeInteger(ref.id) || ref.id < 1 || !Number.isSafeInteger(ref.token) || ref.token < 1) {
    throw new NorthstarError('InvalidArgument', 'expected a claimed task ({ id, token })');
  }
}

export function checkId(id: unknown): number {
  if (!Number.isSafeInteger(id) || (id as number) < 1) throw new NorthstarError('InvalidArgument', `task id must be a positive integer, got ${String(id)}`);
  return id as number;
}

export function checkMs(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new NorthstarError('InvalidArgument', `${what} must be a finite number >= ${min}, got ${String(v)}`);
  return Math.floor(v);
}

/** A checked enqueue: everything validated, the payload encoded. */
export interface CheckedSpec {
  type: string;
  payload: Blob;
  priority: number;
  delayMs: number;
  key: string;
  maxAttempts: number;
}

/** Checks one task to enqueue without writing anything. */
export function checkSpec(q: QueueCore, spec: EnqueueSpec): CheckedSpec {
  if (spec === null || typeof spec !== 'object') throw new NorthstarError('InvalidArgument', 'each task must be an object');
  typeBytes(spec.type);
  const payload = toBlob(spec.payload === undefined ? null : spec.payload, 'payload');
  if (payload.bytes.length > q.maxPayloadBytes) {
    throw new NorthstarError('InvalidArgument', `payload of ${payload.bytes.length} bytes exceeds maxPayloadBytes (${q.maxPayloadBytes})`);
  }
  const priority = spec.priority ?? 0;
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new NorthstarError('InvalidArgument', `priority must be an integer in [${MIN_PRIORITY}, ${MAX_PRIORITY}], got ${String(priority)}`);
  }
  const delayMs = spec.delayMs === undefined ? 0 : checkMs(spec.delayMs, 'delayMs', 0);
  if (spec.key !== undefined) idempotencyKeyBytes(spec.key);
  const maxAttempts = spec.maxAttempts ?? q.defaultMaxAttempts;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 0xffff_ffff) {
    throw new NorthstarError('InvalidArgument', `maxAttempts must be a positive integer, got ${String(maxAttempts)}`);
  }
  return { type: spec.type, payload, priority, delayMs, key: spec.key ?? '', maxAttempts };
}

// ---- the transitions ---------------------------------------------------------

/** enqueue: a new pending task, or the id of the live task holding the same key. */
export function enqueue(tx: QueueTxn, s: CheckedSpec): number {
  const keys = tx.q.keys;
  let keyOf: Buffer | null = null;
  if (s.key !== '') {
    keyOf = keys.idempotency(Buffer.from(s.key, 'utf8'));
    const held = tx.w.get(keyOf);
    if (held !== undefined) return readU64(held, 0);
  }
  const id = tx.bump('seq');
  const t: TaskRecord = {
    id,
    state: TaskState.pending,
    priority: s.priority,
    attempt: 0,
    maxAttempts: s.maxAttempts,
    createdAt: tx.now,
    readyAt: tx.now + s.delayMs,
    leaseUntil: 0,
    token: 0,
    updatedAt: tx.now,
    finishedAt: 0,
    type: s.type,
    worker: '',
    key: s.key,
    payload: s.payload,
    result: null,
    error: null,
  };
  tx.write(t);
  tx.place(t);
  if (keyOf !== null) tx.w.put(keyOf, u64Value(id));
  tx.count(TaskState.pending, t.type, +1);
  return id;
}

/**
 * Housekeeping every claim does first, so no sweeper has to run: delayed
 * tasks whose time has come move to the ready index, and claims whose lease
 * has expired give their task back (pending, or dead after maxAttempts).
 * At most `limit` of each per call.
 */
export function advanceTime(tx: QueueTxn, limit: number): void {
  if (tx.advanced) return;
  tx.advanced = true;
  const { w, q, now } = tx;
  const keys = q.keys;
  const due: Array<[number, number]> = [];
  for (const [k] of w.scan({ ...keys.table(TAG_DELAYED), limit })) {
    const [at, id] = keys.timeIdOf(k);
    if (at > now) break;
    due.push([at, id]);
  }
  for (const [at, id] of due) {
    w.del(keys.delayed(at, id));
    const t = tx.read(id);
    if (t === undefined || t.state !== TaskState.pending) throw new NorthstarError('Corrupt', `queue ${q.name}: delayed entry for task ${id}, which is not pending`);
    tx.place(t);
  }
  const expired: Array<[number, number]> = [];
  for (const [k] of w.scan({ ...keys.table(TAG_LEASE), limit })) {
    const [until, id] = keys.timeIdOf(k);
    if (until > now) break;
    expired.push([until, id]);
  }
  for (const [until, id] of expired) {
    w.del(keys.lease(until, id));
    const t = tx.read(id);
    if (t === undefined || t.state !== TaskState.claimed) throw new NorthstarError('Corrupt', `queue ${q.name}: lease entry for task ${id}, which is not claimed`);
    t.error = toBlob(`lease expired (worker ${t.worker}, token ${t.token})`, 'error');
    requeueAfter(tx, t, 0);
  }
}

/** A claimed task goes back to pending `delayMs` from now, or to dead once it has had maxAttempts claims. */
function requeueAfter(tx: QueueTxn, t: TaskRecord, delayMs: number): void {
  t.leaseUntil = 0;
  if (t.attempt >= t.maxAttempts) tx.finish(t, TaskState.dead);
  else {
    t.state = TaskState.pending;
    t.readyAt = tx.now + delayMs;
    tx.place(t);
    tx.count(TaskState.claimed, t.type, -1);
    tx.count(TaskState.pending, t.type, +1);
  }
  tx.write(t);
}

/**
 * claim: up to `max` ready tasks of `types` (every type when null), highest
 * priority first, then oldest. Each gets the next fencing token, attempt + 1,
 * and a lease of leaseMs from now.
 */
export function claim(tx: QueueTxn, worker: string, types: readonly Buffer[] | null, leaseMs: number, max: number): TaskRecord[] {
  const keys = tx.q.keys;
  const heads: Head[] = [];
  for (const type of types ?? readyTypes(tx)) {
    const name = type.toString('utf8');
    let h = tx.heads.get(name);
    if (h === undefined) {
      h = firstHead(tx, type);
      tx.heads.set(name, h);
    }
    if (h !== null) heads.push(h);
  }
  const claimed: TaskRecord[] = [];
  while (claimed.length < max && heads.length > 0) {
    let best = 0;
    for (let i = 1; i < heads.length; i++) if (before(heads[i]!, heads[best]!)) best = i;
    const h = heads[best]!;
    const next = nextHead(tx, h);
    tx.heads.set(h.type.toString('utf8'), next);
    if (next === null) heads.splice(best, 1);
    else heads[best] = next;
    tx.w.del(h.key);
    tx.w.del(keys.age(h.readyAt, h.id));
    const t = tx.read(h.id);
    if (t === undefined || t.state !== TaskState.pending) throw new NorthstarError('Corrupt', `queue ${tx.q.name}: ready entry for task ${h.id}, which is not pending`);
    t.state = TaskState.claimed;
    t.attempt++;
    t.token = tx.bump('token');
    t.worker = worker;
    t.leaseUntil = tx.now + leaseMs;
    tx.write(t);
    tx.w.put(keys.lease(t.leaseUntil, t.id), EMPTY);
    tx.count(TaskState.pending, t.type, -1);
    tx.count(TaskState.claimed, t.type, +1);
    tx.bump('claims');
    claimed.push(t);
  }
  return claimed;
}

/** complete: the claim's task is done, with its result. */
export function complete(tx: QueueTxn, ref: ClaimRef, result: Blob | null): TaskRecord {
  const t = tx.current(ref, 'complete');
  tx.w.del(tx.q.keys.lease(t.leaseUntil, t.id));
  t.result = result;
  tx.finish(t, TaskState.done);
  tx.write(t);
  tx.bump('completions');
  return t;
}

/** fail: the claim's task goes back to pending after retryInMs, or to dead after maxAttempts claims. */
export function fail(tx: QueueTxn, ref: ClaimRef, error: Blob | null, retryInMs: number): TaskRecord {
  const t = tx.current(ref, 'fail');
  tx.w.del(tx.q.keys.lease(t.leaseUntil, t.id));
  t.error = error;
  requeueAfter(tx, t, retryInMs);
  return t;
}

/** renew: the claim's lease ends leaseMs from now instead. */
export function renew(tx: QueueTxn, ref: ClaimRef, leaseMs: number): TaskRecord {
  const t = tx.current(ref, 'renew');
  const keys = tx.q.keys;
  tx.w.del(keys.lease(t.leaseUntil, t.id));
  t.leaseUntil = tx.now + leaseMs;
  tx.w.put(keys.lease(t.leaseUntil, t.id), EMPTY);
  tx.write(t);
  return t;
}

/** cancel: a pending or claimed task is cancelled (its claim, if any, is lost); false for any other state. */
export function cancel(tx: QueueTxn, id: number): boolean {
  const t = tx.read(id);
  if (t === undefined) return false;
  if (t.state === TaskState.pending) tx.unplace(t);
  else if (t.state === TaskState.claimed) tx.w.del(tx.q.keys.lease(t.leaseUntil, t.id));
  else return false;
  tx.finish(t, TaskState.cancelled);
  tx.write(t);
  return true;
}

/**
 * requeue (the CLI's): a claimed, dead or cancelled task is pending again now,
 * with its attempts counted from 0; a claim it had is lost. False for pending
 * and done tasks; InvalidArgument when its idempotency key went to another task.
 */
export function requeue(tx: QueueTxn, id: number): boolean {
  const t = tx.read(id);
  if (t === undefined || t.state === TaskState.pending || t.state === TaskState.done) return false;
  const keys = tx.q.keys;
  if (t.state !== TaskState.claimed && t.key !== '') {
    const held = tx.w.get(keys.idempotency(Buffer.from(t.key, 'utf8')));
    if (held !== undefined && readU64(held, 0) !== t.id) {
      throw new NorthstarError('InvalidArgument', `task ${id}: its key ${JSON.stringify(t.key)} belongs to live task ${readU64(held, 0)} now`);
    }
  }
  if (t.state === TaskState.claimed) tx.w.del(keys.lease(t.leaseUntil, t.id));
  else {
    tx.w.del(keys.finished(t.finishedAt, t.id));
    if (t.key !== '') tx.w.put(keys.idempotency(Buffer.from(t.key, 'utf8')), u64Value(t.id));
    tx.bump('finished', -1);
  }
  tx.count(t.state, t.type, -1);
  tx.count(TaskState.pending, t.type, +1);
  t.state = TaskState.pending;
  t.attempt = 0;
  t.leaseUntil = 0;
  t.finishedAt = 0;
  t.readyAt = tx.now;
  tx.place(t);
  tx.write(t);
  return true;
}

/**
 * Deletes finished tasks in `states` that finished at or before `before`,
 * oldest first: looks at up to `limit` entries of the finished index after
 * key `after` (from its start when null). Returns how many went, and the last
 * entry looked at (where the next call goes on), null once none is left.
 */
export function purge(tx: QueueTxn, states: ReadonlySet<number>, before: number, limit: number, after: Buffer | null = null): { gone: number; last: Buffer | null } {
  const keys = tx.q.keys;
  const { gte, lt } = keys.table(TAG_FINISHED);
  const found: Buffer[] = [];
  for (const [k] of tx.w.scan(after === null ? { gte, lt, limit } : { gt: after, lt, limit })) {
    if (keys.timeIdOf(k)[0] > before) break;
    found.push(k);
  }
  let gone = 0;
  for (const k of found) {
    const id = keys.timeIdOf(k)[1];
    const t = tx.read(id);
    if (t === undefined) throw new NorthstarError('Corrupt', `queue ${tx.q.name}: finished entry for task ${id}, which does not exist`);
    if (!states.has(t.state)) continue;
    tx.w.del(k);
    tx.w.del(keys.task(id));
    tx.count(t.state, t.type, -1);
    tx.bump('finished', -1);
    gone++;
  }
  return { gone, last: found.length === limit ? found[found.length - 1]! : null };
}
