// The bank workload of the multi-thread, multi-process concurrency torture
// (ts/hard/concurrencymulti.ts) and its reference model. Every commit is a
// function of its txn id and the balances before it, whichever process makes
// it, so every thread and process can rebuild the exact state of any txn on its
// own and check a snapshot against it without talking to the writers.
//
// txn 1 opens the accounts (1,000 each); txns 2..transfersEnd move money
// between accounts and write, replace or delete blobs of 0–31,000 bytes
// (overflow chains); txns after that, up to `end`, are churn: every account
// rewritten in three rounds with new padding (same balance), every blob
// deleted or replaced, so that pages freed earlier are reused and the file
// grows. The balances always sum to accounts × 1,000.

import { createHash } from 'node:crypto';
import { rng, randInt } from '../testing/rng.js';

export interface BankConfig {
  seed: number;
  accounts: number;
  /** Last txn of transfers; churn follows. */
  transfersEnd: number;
  /** Last txn of the run. */
  end: number;
}

export const BLOBS = 24;
export const acct = (i: number): string => `acct:${String(i).padStart(4, '0')}`;
export const blob = (i: number): string => `blob:${String(i).padStart(2, '0')}`;

/** An account value: the balance, then padding so values vary in size (splits and merges). */
export const encodeAccount = (balance: number, pad: number): Buffer => Buffer.from(`${balance}|${'.'.repeat(pad)}`);
export const balanceOf = (v: Uint8Array): number => Number(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1').split('|')[0]);

/** What one commit writes: puts (account values, blob bytes) and deletes. */
export interface BankCommit {
  puts: Array<[string, Buffer]>;
  dels: string[];
}

/** n pseudo-random bytes, four at a time. */
function bytesOf(r: () => number, n: number): Buffer {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = (r() * 2 ** 32) >>> 0;
  return Buffer.from(words.buffer, 0, n);
}

export const digestOf = (v: Uint8Array): string => createHash('sha1').update(v).digest('hex');

/**
 * The commit of txn t. `balance(i)` is account i's balance before it (a
 * writer reads it through its write transaction; the model from its state).
 */
export function bankCommit(cfg: BankConfig, t: number, balance: (i: number) => number): BankCommit {
  const r = rng(cfg.seed, t);
  const puts: Array<[string, Buffer]> = [];
  const dels: string[] = [];
  if (t === 1) {
    for (let i = 0; i < cfg.accounts; i++) puts.push([acct(i), encodeAccount(1000, randInt(r, 60))]);
    return { puts, dels };
  }
  if (t <= cfg.transfersEnd) {
    const moved = new Map<number, number>();
    const bal = (i: number): number => moved.get(i) ?? balance(i);
    for (let n = 1 + randInt(r, 8); n > 0; n--) {
      const a = randInt(r, cfg.accounts);
      const b = (a + 1 + randInt(r, cfg.accounts - 1)) % cfg.accounts;
      const amount = Math.min(bal(a), 1 + randInt(r, 200));
      moved.set(a, bal(a) - amount);
      moved.set(b, bal(b) + amount);
    }
    for (const [i, v] of moved) puts.push([acct(i), encodeAccount(v, randInt(r, 60))]);
    if (r() < 0.4) {
      const k = blob(randInt(r, BLOBS));
      if (r() < 0.3) dels.push(k);
      else puts.push([k, bytesOf(r, r() < 0.5 ? randInt(r, 600) : 1000 + randInt(r, 30_000))]);
    }
    return { puts, dels };
  }
  for (let i = t % 3; i < cfg.accounts; i += 3) puts.push([acct(i), encodeAccount(balance(i), randInt(r, 120))]);
  for (let b = 0; b < BLOBS; b++) {
    if ((b + t) % 2 === 0) dels.push(blob(b));
    else puts.push([blob(b), bytesOf(r, randInt(r, 20_000))]);
  }
  return { puts, dels };
}

/** A value the model expects: an account's bytes, or a blob's length and SHA-1 (undefined: absent). */
export type Expected = Buffer | { length: number; sha1: string } | undefined;

/**
 * The state after every txn, extended on demand: per key, the txns that
 * changed it and what they wrote (accounts in full, blobs as length and hash).
 */
export class BankModel {
  private upTo = 0;
  private readonly changes = new Map<string, Array<[number, Expected]>>();
  private readonly balances: number[];

  constructor(readonly cfg: BankConfig) {
    this.balances = new Array<number>(cfg.accounts).fill(0);
  }

  get total(): number {
    return this.cfg.accounts * 1000;
  }

  /** Models every txn up to t. */
  private extendTo(t: number): void {
    while (this.upTo < t) {
      const txn = this.upTo + 1;
      const c = bankCommit(this.cfg, txn, (i) => this.balances[i]!);
      for (const [k, v] of c.puts) {
        const e: Expected = k.startsWith('acct:') ? v : { length: v.length, sha1: digestOf(v) };
        if (k.startsWith('acct:')) this.balances[Number(k.slice(5))] = balanceOf(v);
        this.record(k, txn, e);
      }
      for (const k of c.dels) this.record(k, txn, undefined);
      this.upTo = txn;
    }
  }

  private record(k: string, txn: number, e: Expected): void {
    let list = this.changes.get(k);
    if (list === undefined) this.changes.set(k, (list = []));
    list.push([txn, e]);
  }

  /** Key k as of txn t. */
  at(k: string, t: number): Expected {
    if (t > this.cfg.end) throw new Error(`txn ${t} is past the end of the run (${this.cfg.end})`);
    this.extendTo(t);
    const list = this.changes.get(k);
    if (list === undefined) return undefined;
    let lo = 0;
    let hi = list.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]![0] <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : list[found]![1];
  }
}

/** Whether a value read equals what the model expects. */
export function matches(v: Buffer | undefined, e: Expected): boolean {
  if (v === undefined || e === undefined) return v === e;
  if (Buffer.isBuffer(e)) return v.equals(e);
  return v.length === e.length && digestOf(v) === e.sha1;
}
