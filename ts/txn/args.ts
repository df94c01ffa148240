// Argument checks shared by the transaction classes. Every check runs before
// anything changes, so a rejected call leaves no trace (spec §7).

import { NorthstarError } from '../errors.js';
import { MAX_VALUE_SIZE } from '../format/constants.js';
import { prefixEnd, type ScanRange } from '../btree/cursor.js';
import { compareBytes } from '../format/bytes.js';

/** Keys and values: bytes, or a string taken as UTF-8. */
export type Bytes = Uint8Array | string;

export interface ScanOptions {
  gte?: Bytes;
  gt?: Bytes;
  lte?: Bytes;
  lt?: Bytes;
  prefix?: Bytes;
  reverse?: boolean;
  limit?: number;
}

export function toBytes(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  throw new NorthstarError('InvalidArgument', `${what} must be a Uint8Array or a string, got ${v === null ? 'null' : typeof v}`);
}

export function toKey(v: unknown, maxKey: number): Uint8Array {
  const key = toBytes(v, 'key');
  if (key.length === 0) throw new NorthstarError('InvalidArgument', 'key must not be empty');
  if (key.length > maxKey) throw new NorthstarError('InvalidArgument', `key of ${key.length} bytes exceeds the limit of ${maxKey} bytes for this page size`);
  return key;
}

export function toValue(v: unknown): Uint8Array {
  const value = toBytes(v, 'value');
  if (value.length > MAX_VALUE_SIZE) {
    throw new NorthstarError('InvalidArgument', `value of ${value.length} bytes exceeds the limit of ${MAX_VALUE_SIZE} bytes`);
  }
  return value;
}

/** Folds the scan options into one range; contradictory bounds give an empty range. */
/** Bounds are copied: a caller changing its buffers mid-scan must not move the range. */
function bound(v: unknown, what: string): Uint8Array {
  return new Uint8Array(toBytes(v, what));
}

export function toRange(opts: ScanOptions | undefined): ScanRange {
  const o = opts ?? {};
  if (typeof o !== 'object') throw new NorthstarError('InvalidArgument', 'scan options must be an object');
  const r: ScanRange = { lower: undefined, lowerInclusive: true, upper: undefined, upperInclusive: false, reverse: o.reverse === true, limit: Infinity };
  const lower = (key: Uint8Array, inclusive: boolean): void => {
    const c = r.lower === undefined ? 1 : compareBytes(key, 0, key.length, r.lower);
    if (c > 0 || (c === 0 && !inclusive)) {
      r.lower = key;
      r.lowerInclusive = inclusive;
    }
  };
  const upper = (key: Uint8Array, inclusive: boolean): void => {
    const c = r.upper === undefined ? -1 : compareBytes(key, 0, key.length, r.upper);
    if (c < 0 || (c === 0 && !inclusive)) {
      r.upper = key;
      r.upperInclusive = inclusive;
    }
  };
  if (o.gte !== undefined) lower(bound(o.gte, 'gte'), true);
  if (o.gt !== undefined) lower(bound(o.gt, 'gt'), false);
  if (o.lte !== undefined) upper(bound(o.lte, 'lte'), true);
  if (o.lt !== undefined) upper(bound(o.lt, 'lt'), false);
  if (o.prefix !== undefined) {
    const p = bound(o.prefix, 'prefix');
    if (p.length > 0) {
      lower(p, true);
      const end = prefixEnd(p);
      if (end !== undefined) upper(end, false);
    }
  }
  if (o.limit !== undefined) {
    if (typeof o.limit !== 'number' || !(o.limit >= 0) || (!Number.isInteger(o.limit) && o.limit !== Infinity)) {
      throw new NorthstarError('InvalidArgument', 'limit must be a non-negative integer');
    }
    r.limit = o.limit;
  }
  return r;
}
