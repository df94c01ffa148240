// A crash during a group commit (spec/commit_record_v0.md §7, rule 3a): the
// file system may write back a later record and lose an earlier one. None of
// them was acknowledged, so recovery must treat the gap as a torn tail, not as
// damage — while the same pattern after synced commits is still Corrupt.

import { describe, expect, it } from 'vitest';
import { open } from './db/index.js';
import { FaultyFileSystem, type Pending } from './io/faulty.js';
import { NorthstarError } from './errors.js';

const DB = '/virtual/group.ndb';
const LOG = `${DB}.log`;

function logWrites(fs: FaultyFileSystem): number[] {
  return fs
    .pending()
    .filter((p) => p.path === LOG && p.op.kind === 'write')
    .map((p) => p.index);
}

describe('group commit crash', () => {
  it('an unsynced group with an earlier record lost and later ones kept recovers to the last synced commit', () => {
    const fs = new FaultyFileSystem();
    const db = open(DB, { fileSystem: fs, pageSize: 4096 });
    let w = db.beginWrite();
    w.put('synced', '1');
    expect(w.commit()).toBe(1);
    // Five commitAsync calls: appended now, synced only when the event loop turns.
    for (let i = 0; i < 5; i++) {
      w = db.beginWrite();
      w.put(`async${i}`, String(i));
      void w.commitAsync().catch(() => undefined);
    }
    const writes = logWrites(fs);
    expect(writes.length).toBe(5);
    for (let lost = 0; lost < writes.length; lost++) {
      const image = fs.crash((path, index, op: Pending) => (path === LOG && op.kind === 'write' && index === writes[lost] ? 'drop' : 'keep'));
      const again = open(DB, { fileSystem: image });
      expect(again.txnId).toBe(1 + lost);
      expect(again.verify().ok).toBe(true);
      again.close();
    }
    // Nothing lost: all six commits.
    const all = open(DB, { fileSystem: fs.crash(() => 'keep') });
    expect(all.txnId).toBe(6);
    all.close();
  });

  it('a lost record followed by one written after a sync is damage in the middle: Corrupt', () => {
    const fs = new FaultyFileSystem();
    const db = open(DB, { fileSystem: fs, pageSize: 4096 });
    for (let i = 0; i < 3; i++) {
      const w = db.beginWrite();
      w.put(`k${i}`, 'v');
      w.commit();
    }
    // Zero the second record on "disk" (as a medium would lose it): the third
    // was written when the second was durable, so this cannot be a crash.
    const bytes = fs.bytes(LOG);
    const records: number[] = [];
    for (const r of db.readLog()) records.push(r.position);
    bytes.fill(0, records[1]!, records[2]!);
    const image = fs.crash(() => 'keep');
    image.setBytes(LOG, bytes);
    let err: unknown;
    try {
      open(DB, { fileSystem: image });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NorthstarError);
    expect((err as NorthstarError).code).toBe('Corrupt');
    expect((err as NorthstarError).message).toContain(String(records[1]));
  });
});
