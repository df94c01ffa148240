// spec/task_queue_v0.md's tables against the code: the key tags, the task
// record's fixed layout (checked by encoding a record and reading the bytes
// at the offsets the spec gives), and the named constants.

import { describe, expect, it } from 'vitest';
import { parseTables, readSpec, tablesWithHeader } from '../testing/spec_tables.js';
import * as keys from './keys.js';
import * as queue from './queue.js';
import { encodeTask, decodeTask, TASK_FIXED_BYTES, TASK_RECORD_VERSION, TaskState, BLOB_JSON, BLOB_BYTES } from './task.js';

const tables = parseTables(readSpec('task_queue_v0.md'));

describe('spec/task_queue_v0.md', () => {
  it('§2 tags: every table of the key layout has the tag the code writes', () => {
    const [t] = tablesWithHeader(tables, 'tag', 'table', 'rest of the key', 'value');
    const byName: Record<string, number> = {
      task: keys.TAG_TASK,
      ready: keys.TAG_READY,
      delayed: keys.TAG_DELAYED,
      age: keys.TAG_AGE,
      lease: keys.TAG_LEASE,
      finished: keys.TAG_FINISHED,
      key: keys.TAG_IDEMPOTENCY,
      count: keys.TAG_COUNT,
      counter: keys.TAG_COUNTER,
    };
    expect(t!.rows.length).toBe(Object.keys(byName).length);
    for (const r of t!.rows) {
      const name = /^(\w+) \(`(\w)`\)$/.exec(r.cells[1]!);
      expect(name, `line ${r.line}`).not.toBeNull();
      expect(Number(/`(0x[0-9a-f]+)`/.exec(r.cells[0]!)![1]), `line ${r.line}`).toBe(byName[name![1]!]);
      expect(String.fromCharCode(byName[name![1]!]!)).toBe(name![2]);
    }
  });

  it('§2 and §4.7 constants have the values the code uses', () => {
    const values = tablesWithHeader(tables, 'constant', 'value', 'meaning').concat(tablesWithHeader(tables, 'constant', 'value'));
    const code: Record<string, unknown> = { ...keys, ...queue };
    let n = 0;
    for (const t of values) {
      for (const r of t.rows) {
        const name = /^`(\w+)`$/.exec(r.cells[0]!)![1]!;
        n++;
        if (name === 'QUEUE_KEY_PREFIX') expect(Buffer.from(keys.QUEUE_KEY_PREFIX).toString('hex').replace(/(..)(?!$)/g, '$1 ')).toBe(r.cells[1]!.replace(/`/g, ''));
        else expect(code[name], `${name} (line ${r.line})`).toBe(Number(r.cells[1]));
      }
    }
    expect(n).toBe(12);
  });

  it('§3 the task record: each fixed field lies at the offset and size the spec gives', () => {
    const [t] = tablesWithHeader(tables, 'offset', 'size', 'field', 'meaning');
    const record = {
      id: 0x0102030405,
      state: TaskState.claimed,
      priority: -7,
      attempt: 3,
      maxAttempts: 9,
      createdAt: 11,
      readyAt: 12,
      leaseUntil: 13,
      token: 14,
      updatedAt: 15,
      finishedAt: 16,
      type: 't',
      worker: 'w',
      key: 'k',
      payload: { kind: BLOB_JSON, bytes: Buffer.from('1') } as const,
      result: null,
      error: null,
    };
    const b = encodeTask(record);
    // The record's own values: what the bytes at each field's offset must hold.
    const want: Record<string, number> = { version: TASK_RECORD_VERSION, reserved: 0 };
    for (const f of ['state', 'priority', 'attempt', 'maxAttempts', 'id', 'createdAt', 'readyAt', 'leaseUntil', 'token', 'updatedAt', 'finishedAt'] as const) want[f] = record[f];
    let fixed = 0;
    for (const r of t!.rows) {
      if (r.cells[1] === '') continue;
      const [offset, size, field] = [Number(r.cells[0]), Number(r.cells[1]), r.cells[2]!];
      const read = size === 1 ? b.readUInt8(offset) : size === 2 ? b.readUInt16BE(offset) : size === 4 ? (field === 'priority' ? b.readInt32BE(offset) : b.readUInt32BE(offset)) : keys.readU64(b, offset);
      expect(read, `${field} at ${offset}`).toBe(want[field]);
      fixed = Math.max(fixed, offset + size);
    }
    expect(fixed).toBe(TASK_FIXED_BYTES);
  });

  it('§3 the variable fields: strings of any UTF-8 width and every blob kind read back as written', () => {
    const record = {
      id: 2 ** 40 + 3,
      state: TaskState.done,
      priority: 2 ** 31 - 1,
      attempt: 1,
      maxAttempts: 5,
      createdAt: 1,
      readyAt: 2,
      leaseUntil: 0,
      token: 2 ** 52,
      updatedAt: 4,
      finishedAt: 5,
      type: 'büild-構築-🚀',
      worker: '',
      key: 'k'.repeat(300) + 'é',
      payload: { kind: BLOB_BYTES, bytes: Buffer.from([0, 255, 7]) } as const,
      result: { kind: BLOB_JSON, bytes: Buffer.from('{"ok":"✓"}') } as const,
      error: null,
    };
    const b = encodeTask(record);
    // 9 length fields (3 strings: u16; 3 blobs: u8 kind + u32) around the UTF-8 bytes.
    expect(b.length).toBe(TASK_FIXED_BYTES + 6 + Buffer.byteLength(record.type) + 0 + 301 + 1 + 15 + 3 + Buffer.byteLength('{"ok":"✓"}'));
    const back = decodeTask(b, 'q');
    expect({ ...back, payload: back.payload && { ...back.payload, bytes: [...back.payload.bytes] }, result: back.result && { ...back.result, bytes: back.result.bytes.toString() } }).toEqual({
      ...record,
      payload: { kind: BLOB_BYTES, bytes: [0, 255, 7] },
      result: { kind: BLOB_JSON, bytes: '{"ok":"✓"}' },
    });
  });
});
