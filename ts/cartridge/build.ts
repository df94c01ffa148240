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
import { compareEntries, encodeCartridge, groupKey, type CartridgeEntry, type CartridgeGroup } from './format.js';

/** Bytes of a ready key after its type: 00 ‖ rank u32 ‖ readyAt u64 ‖ id u64. */
const READY_TAIL = 21;

/** A ready key, parsed: its queue and type (views of the key's bytes) and its entry. */
export interface ReadyKey {
  queue: Buffer;
  type: Buffer;
  entry: CartridgeEntry;
}

/**
 * The ready key `key` parsed (spec §1), or null for any other key. The one
 * parser of ready keys: builds, the delta and lookups in the tree use it.
 */
export function readyKeyOf(key: Uint8Array): ReadyKey | null {
  const prefix = QUEUE_KEY_PREFIX;
  if (key.length < prefix.length + 3 + 1 + READY_TAIL || !startsWith(key, prefix)) return null;
  const nameEnd = key.indexOf(0, prefix.length);
  if (nameEnd <= prefix.length || key[nameEnd + 1] !== TAG_READY) return null;
  const typeStart = nameEnd + 2;
  const typeEnd = key.length - READY_TAIL;
  if (typeEnd <= typeStart || key[typeEnd] !== 0) return null; // not a ready key of task_queue_v0's layout
  const at = typeEnd + 1;
  const view = (from: number, to: number): Buffer => Buffer.from(key.buffer, key.byteOffset + from, to - from);
  return {
    queue: view(prefix.length, nameEnd),
    type: view(typeStart, typeEnd),
    entry: { rank: readU32BE(key, at), readyAt: readU64(key, at + 4), id: readU64(key, at + 12) },
  };
}

function readU32BE(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Entries collected into their (queue, type) groups, in any order; groups() sorts them as spec §1 orders a cartridge. */
export class GroupCollector {
  private readonly byGroup = new Map<string, CartridgeGroup>();

  /** Adds `key` if it is a ready key (copying its names once per group); true when it was. */
  add(key: Uint8Array): boolean {
    const r = readyKeyOf(key);
    if (r === null) return false;
    const k = groupKey(r.queue.toString('utf8'), r.type.toString('utf8'));
    let g = this.byGroup.get(k);
    if (g === undefined) this.byGroup.set(k, (g = { queue: Buffer.from(r.queue), type: Buffer.from(r.type), entries: [] }));
    g.entries.push(r.entry);
    return true;
  }

  groups(): CartridgeGroup[] {
    const groups = [...this.byGroup.values()].sort((a, b) => Buffer.compare(a.queue, b.queue) || Buffer.compare(a.type, b.type));
    for (const g of groups) g.entries.sort(compareEntries);
    return groups;
  }
}

/**
 * The groups of the cartridge of a state (spec §1): every ready key among
 * `keys` (any order; other keys are skipped) as an entry of its (queue, type)
 * group; groups sorted by (queue, type), entries in claim order.
 */
export function cartridgeGroupsOf(keys: Iterable<Uint8Array>): CartridgeGroup[] {
  const c = new GroupCollector();
  for (const key of keys) c.add(key);
  return c.groups();
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
  const collector = new GroupCollector();
  for (const [k] of r.state.entries()) collector.add(k);
  const groups = collector.groups();
  const bytes = encodeCartridge({ dbId, txnId: r.txnId, logEnd, groups });
  return { bytes, txnId: r.txnId, logEnd, dbId, entries: groups.reduce((n, g) => n + g.entries.length, 0), groups: groups.length };
}
