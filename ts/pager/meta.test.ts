// chooseMeta (spec §3, rule 3): highest txn id, then the later checkpoint
// sequence in serial-number order, then meta A; and a checkpoint by another
// process while it reads does not make the file look truncated.

import { describe, expect, it } from 'vitest';
import { FaultyFileSystem } from '../io/faulty.js';
import { kernels } from '../native/kernels.js';
import type { DbFile } from '../io/file.js';
import { chooseMeta, emptyMeta, encodeMeta, type Meta } from './meta.js';

function fileWith(a: Partial<Meta>, b: Partial<Meta>): ReturnType<FaultyFileSystem['open']> {
  const ps = 4096;
  const img = new Uint8Array(ps * 2);
  img.set(encodeMeta({ ...emptyMeta(ps, 77), ...a }, 0, kernels), 0);
  img.set(encodeMeta({ ...emptyMeta(ps, 77), ...b }, 1, kernels), ps);
  const fs = new FaultyFileSystem();
  fs.setBytes('/m', img);
  return fs.open('/m');
}

describe('chooseMeta', () => {
  it('prefers the higher txn id whatever the sequence', () => {
    expect(chooseMeta(fileWith({ txnId: 5, checkpointSeq: 9 }, { txnId: 6, checkpointSeq: 1 }), kernels).slot).toBe(1);
  });

  it('breaks a txn-id tie by the later checkpoint sequence, across the 2^32 wrap', () => {
    expect(chooseMeta(fileWith({ txnId: 5, checkpointSeq: 3 }, { txnId: 5, checkpointSeq: 4 }), kernels).slot).toBe(1);
    expect(chooseMeta(fileWith({ txnId: 5, checkpointSeq: 4 }, { txnId: 5, checkpointSeq: 3 }), kernels).slot).toBe(0);
    expect(chooseMeta(fileWith({ txnId: 5, checkpointSeq: 0xffffffff }, { txnId: 5, checkpointSeq: 0 }), kernels).slot).toBe(1);
    expect(chooseMeta(fileWith({ txnId: 5, checkpointSeq: 1 }, { txnId: 5, checkpointSeq: 0xfffffffe }), kernels).slot).toBe(0);
  });

  it('a full tie goes to meta A', () => {
    expect(chooseMeta(fileWith({ txnId: 5, checkpointSeq: 2 }, { txnId: 5, checkpointSeq: 2 }), kernels).slot).toBe(0);
  });

  it('reads the file size after the metas: a checkpoint that grows the file between the two is not "truncated"', () => {
    const ps = 4096;
    const img = new Uint8Array(ps * 2);
    img.set(encodeMeta({ ...emptyMeta(ps, 77), txnId: 5, pageCount: 2 }, 0, kernels), 0);
    img.set(encodeMeta({ ...emptyMeta(ps, 77), txnId: 4, pageCount: 2 }, 1, kernels), ps);
    const fs = new FaultyFileSystem();
    fs.setBytes('/m', img);
    const file = fs.open('/m');
    // Another process checkpoints during the first read: it grows the file to 10 pages, then
    // writes meta B for txn 6 needing them (spec §8.2 order).
    let raced = false;
    const racing: DbFile = Object.assign(Object.create(file) as DbFile, {
      read(buf: Uint8Array, position: number): number {
        if (!raced) {
          raced = true;
          file.truncate(10 * ps);
          file.write(encodeMeta({ ...emptyMeta(ps, 77), txnId: 6, pageCount: 10 }, 1, kernels), ps);
        }
        return file.read(buf, position);
      },
    });
    const chosen = chooseMeta(racing, kernels);
    expect(raced).toBe(true);
    expect(chosen.slot).toBe(1);
    expect(chosen.meta.txnId).toBe(6);
  });
});
