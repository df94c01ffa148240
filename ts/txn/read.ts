// Read-only snapshot of one commit. Holds its root for its whole life; the
// pages it can reach are not reused until it closes (spec §6.1).

import { NorthstarError } from '../errors.js';
import { ScanIterator, type ScanHost } from '../btree/cursor.js';
import { treeGet } from '../btree/read.js';
import type { ReadHost } from './host.js';
import { toKey, toRange, type Bytes, type ScanOptions } from './args.js';

/** Only create() has it: a user's `new ReadTxn(...)` throws. */
const CREATE = Symbol('ReadTxn.create');

export class ReadTxn implements Disposable {
  readonly #host: ReadHost;
  /** The commit this snapshot shows. */
  readonly txnId: number;
  readonly #root: number;
  #closed = false;

  private constructor(token: symbol, host: ReadHost, txnId: number, root: number) {
    if (token !== CREATE) throw new TypeError('ReadTxn has no public constructor: use db.beginRead()');
    this.#host = host;
    this.txnId = txnId;
    this.#root = root;
  }

  /** @internal The database's engine hands out read transactions; users call db.beginRead(). */
  static create(host: ReadHost, txnId: number, root: number): ReadTxn {
    return new ReadTxn(CREATE, host, txnId, root);
  }

  /** A caller-owned copy of the value, or undefined. */
  get(key: Bytes): Buffer | undefined {
    // The hottest call there is: the checks of #checkOpen inline, each private field read once.
    const host = this.#host;
    if (this.#closed) throw new NorthstarError('Closed', 'read transaction is closed');
    host.checkOpen();
    // The root of a snapshot is always written by the snapshot's own commit (spec §4.5, rule 13).
    return treeGet(host.source, this.#root, this.txnId, toKey(key, host.maxKeySize));
  }

  /** Entries in key order (or reverse) within the bounds; see ScanOptions. */
  scan(options?: ScanOptions): IterableIterator<[Buffer, Buffer]> {
    this.#checkOpen();
    const scanHost: ScanHost = {
      checkOpen: () => this.#checkOpen(),
      source: () => this.#host.source,
      root: () => this.#root,
      rootTxn: () => this.txnId,
      version: () => 0,
      fixed: true,
    };
    return new ScanIterator(scanHost, toRange(options));
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.releaseSnapshot(this.txnId);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new NorthstarError('Closed', 'read transaction is closed');
    this.#host.checkOpen();
  }
}
