// Building a pending_tasks_by_type cartridge (spec/cartridge_v1.md §1, §4):
// the ready keys of a state are the whole content, so the builder is a filter
// and a sort. buildCartridgeFromLog gets the state from the log alone, by the
// same replay() that `northstar replay` and time travel's tests use; any
// other source of the same state (a snapshot of the tree) gives the same
// bytes.

import { NorthstarError } from '../errors.js';
import { LogFile } from '../log/file.js';
import { replay } from '../log/replay.js';
import { kernels } from '../native/kernels.js';
import { QUEUE_KEY_PREFIX, readU64, TAG_READY } from '../queue/keys.js';
import { compareEntries, encodeCartridge, type CartridgeGroup } from './format.js';

/** Bytes of a ready key after its type: 00 ‖ rank u32 ‖ readyAt u64 ‖ id u64. */
const READY_TAIL = 21;

/**
 * The groups of the cartridge of a state (spec §1): every ready key among
 * `keys` (any order; other keys are skipped) as an entry of its (queue, type)
 * group; groups sorted by (queue, type), entries in claim order.
 */
export function cartridgeGroupsOf(keys: Iterable<Uint8Array>): CartridgeGroup[] {
  const byGroup = new Map<string, CartridgeGroup>();
  const prefix = QUEUE_KEY_PREFIX;
  for (const key of keys) {
    if (key.length < prefix.length + 3 + 1 + READY_TAIL || !startsWith(key, prefix)) continue;
    const nameEnd = key.indexOf(0, prefix.length);
    if (nameEnd <= prefix.length || key[nameEnd + 1] !== TAG_READY) continue;
    const typeStart = nameEnd + 2;
    const typeEnd = key.length - READY_TAIL;
    if (typeEnd <= typeStart || key[typeEnd] !== 0) continue; // not a ready key of task_queue_v0's layout
    const queue = Buffer.from(key.subarray(prefix.length, nameEnd));
    const type = Buffer.from(key.subarray(typeStart, typeEnd));
    const id = `${queue.toString('latin1')}\0${type.toString('latin1')}`;
    let g = byGroup.get(id);
    if (g === undefined) byGroup.set(id, (g = { queue, type, entries: [] }));
    const at = typeEnd + 1;
    g.entries.push({ rank: ((key[at]! << 24) | (key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!) >>> 0, readyAt: readU64(key, at + 4), id: readU64(key, at + 12) });
  }
  const groups = [...byGroup.values()].sort((a, b) => Buffer.compare(a.queue, b.queue) || Buffer.compare(a.type, b.type));
  for (const g of groups) g.entries.sort(compareEntries);
  return groups;
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

export interface BuildFromLogOptions {
  /** The txn to build at (default: the log's last commit). */
  at?: number;
}

export interface BuiltCartridge {
  bytes: Uint8Array;
  txnId: number;
  logEnd: number;
  dbId: number;
  entries: number;
  groups: number;
}

/**
 * The cartridge of database `dbPath` at txn `at`, from its log alone
 * (`<dbPath>.log`; the data file may be absent). SnapshotNotFound when the log
 * does not start at txn 1 or ends before `at`; Corrupt for a damaged log.
 */
export function buildCartridgeFromLog(dbPath: string, options: BuildFromLogOptions = {}): BuiltCartridge {
  const logPath = dbPath.endsWith('.log') ? dbPath : `${dbPath}.log`;
  let dbId: number;
  let base: number;
  try {
    const log = LogFile.open(logPath, null, kernels);
    dbId = log.dbId;
    base = log.base;
    log.close();
  } catch (err) {
    if (err instanceof NorthstarError) throw err;
    throw new NorthstarError('IoError', `${logPath}: ${(err as Error).message}`, { path: logPath, cause: err });
  }
  let logEnd = base;
  const r = replay(dbPath, {
    ...(options.at !== undefined ? { toTxnId: options.at } : {}),
    onCommit: (c) => {
      logEnd = c.end;
    },
  });
  const groups = cartridgeGroupsOf((function* () {
    for (const [k] of r.state.entries()) yield k;
  })());
  const bytes = encodeCartridge({ dbId, txnId: r.txnId, logEnd, groups });
  return { bytes, txnId: r.txnId, logEnd, dbId, entries: groups.reduce((n, g) => n + g.entries.length, 0), groups: groups.length };
}
