// q.verify() (spec/task_queue_v0.md §7): every invariant of a queue's tables,
// checked against its task records in one read transaction. A problem names
// the table and the task; nothing is repaired.

import { NorthstarError } from '../errors.js';
import type { ReadTxn } from '../txn/read.js';
import { QueueKeys, readU64, u64Value, TAG_AGE, TAG_COUNT, TAG_COUNTER, TAG_DELAYED, TAG_FINISHED, TAG_IDEMPOTENCY, TAG_LEASE, TAG_READY, TAG_TASK, typeBytes } from './keys.js';
import { decodeTask, STATE_NAMES, TaskState } from './task.js';

export interface QueueVerifyReport {
  ok: boolean;
  /** Tasks read. */
  tasks: number;
  problems: string[];
}

const TABLES = new Map<number, string>([
  [TAG_TASK, 'task'],
  [TAG_READY, 'ready'],
  [TAG_DELAYED, 'delayed'],
  [TAG_AGE, 'age'],
  [TAG_LEASE, 'lease'],
  [TAG_FINISHED, 'finished'],
  [TAG_IDEMPOTENCY, 'key'],
  [TAG_COUNT, 'count'],
  [TAG_COUNTER, 'counter'],
]);

/** At most this many problems are listed (the report says how many more). */
const MAX_PROBLEMS = 100;

export function verifyQueue(r: ReadTxn, keys: QueueKeys, name: string, now: number): QueueVerifyReport {
  const problems: string[] = [];
  let more = 0;
  const problem = (p: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
    else more++;
  };
  const hex = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('hex');
  /** Index entries the task records call for, by table: key hex -> what it is for. */
  const expected = new Map<number, Map<string, string>>();
  for (const tag of TABLES.keys()) expected.set(tag, new Map());
  const expect = (tag: number, key: Buffer, what: string, value?: Buffer): void => {
    expected.get(tag)!.set(hex(key) + (value === undefined ? '' : `=${value.toString('hex')}`), what);
  };
  const counts = new Map<string, number>();
  let maxId = 0;
  let maxToken = 0;
  let finished = 0;
  let tasks = 0;

  for (const [k, v] of r.scan(keys.table(TAG_TASK))) {
    tasks++;
    const id = keys.idOf(k);
    let t;
    try {
      t = decodeTask(v, name);
    } catch (err) {
      problem(`task ${id}: ${(err as NorthstarError).message}`);
      continue;
    }
    if (t.id !== id) problem(`task ${id}: its record says id ${t.id}`);
    const what = `task ${id} (${STATE_NAMES[t.state]})`;
    maxId = Math.max(maxId, id);
    maxToken = Math.max(maxToken, t.token);
    counts.set(`${t.state}\u0000${t.type}`, (counts.get(`${t.state}\u0000${t.type}`) ?? 0) + 1);
    if (t.attempt > t.maxAttempts) problem(`${what}: attempt ${t.attempt} exceeds maxAttempts ${t.maxAttempts}`);
    switch (t.state) {
      case TaskState.pending:
        // Delayed, or ready (a due delayed entry is promoted by the next claim: either is right for a due task).
        if (r.get(keys.delayed(t.readyAt, id)) !== undefined) expect(TAG_DELAYED, keys.delayed(t.readyAt, id), what);
        else {
          if (t.readyAt > now) problem(`${what}: ready at ${t.readyAt}, later than now (${now}), but not in the delayed index`);
          expect(TAG_READY, keys.ready(typeBytes(t.type), t.priority, t.readyAt, id), what);
          expect(TAG_AGE, keys.age(t.readyAt, id), what);
        }
        if (t.leaseUntil !== 0 || t.finishedAt !== 0) problem(`${what}: has a lease or finish time`);
        break;
      case TaskState.claimed:
        expect(TAG_LEASE, keys.lease(t.leaseUntil, id), what);
        if (t.token === 0 || t.attempt === 0) problem(`${what}: claimed without a token or an attempt`);
        break;
      default:
        finished++;
        expect(TAG_FINISHED, keys.finished(t.finishedAt, id), what);
        if (t.leaseUntil !== 0) problem(`${what}: finished with a lease`);
    }
    if (t.key !== '' && (t.state === TaskState.pending || t.state === TaskState.claimed)) expect(TAG_IDEMPOTENCY, keys.idempotency(Buffer.from(t.key, 'utf8')), what, u64Value(id));
  }
  for (const [key, n] of counts) {
    const [state, type] = key.split('\u0000') as [string, string];
    expect(TAG_COUNT, keys.count(Number(state), Buffer.from(type, 'utf8')), `count of ${STATE_NAMES[Number(state)]} ${type}`, u64Value(n));
  }

  // Every entry of every index table must be one the records call for, and the other way round.
  for (const [tag, table] of TABLES) {
    if (tag === TAG_TASK || tag === TAG_COUNTER) continue;
    const want = expected.get(tag)!;
    const withValue = tag === TAG_IDEMPOTENCY || tag === TAG_COUNT;
    for (const [k, v] of r.scan(keys.table(tag))) {
      const id = hex(k) + (withValue ? `=${Buffer.from(v).toString('hex')}` : '');
      if (want.delete(id)) continue;
      if (withValue) problem(`${table} entry ${describe(keys, tag, k)} holds ${v.length === 8 ? readU64(v, 0) : `${v.length} bytes`}, which no task record accounts for`);
      else problem(`${table} entry ${describe(keys, tag, k)} for no task in that state`);
    }
    for (const what of want.values()) problem(`${what}: missing from the ${table} index`);
  }
  const counter = (n: string): number => {
    const v = r.get(keys.counter(n));
    return v === undefined ? 0 : readU64(v, 0);
  };
  if (counter('seq') < maxId) problem(`counter seq (${counter('seq')}) is below the largest task id (${maxId})`);
  if (counter('token') < maxToken) problem(`counter token (${counter('token')}) is below the largest token (${maxToken})`);
  if (counter('finished') !== finished) problem(`counter finished (${counter('finished')}) differs from the finished tasks (${finished})`);
  for (const [k] of r.scan({ prefix: keys.base })) {
    if (!TABLES.has(k[keys.base.length]!)) {
      problem(`unknown key ${hex(k)} under the queue's prefix`);
      break;
    }
  }
  if (more > 0) problems.push(`... and ${more} more`);
  return { ok: problems.length === 0, tasks, problems };
}

function describe(keys: QueueKeys, tag: number, k: Uint8Array): string {
  if (tag === TAG_READY) {
    const [priority, readyAt, id] = keys.readyFieldsOf(k);
    return `(type ${keys.readyTypeOf(k).toString('utf8')}, priority ${priority}, ready ${readyAt}, task ${id})`;
  }
  if (tag === TAG_IDEMPOTENCY) return JSON.stringify(keys.idempotencyKeyOf(k));
  if (tag === TAG_COUNT) {
    const [state, type] = keys.countFieldsOf(k);
    return `(${STATE_NAMES[state]}, ${type})`;
  }
  const [time, id] = keys.timeIdOf(k);
  return `(${time}, task ${id})`;
}
