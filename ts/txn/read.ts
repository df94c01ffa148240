// Read-only snapshot of one commit. Holds its root for its whole life; the
// pages it can reach are not reused until it closes (spec §6.1).

import { NorthstarError } from '../errors.js';
import { ScanIterator, type ScanHost } from '../btree/cursor.js';
import { treeGet, type PageSource } from '../btree/read.js';
import { toKey, toRange, type Bytes, type ScanOptions } from './args.js';

/** What a read transaction needs from its database. */
export interface ReadHost {
  readonly source: PageSource;
  readonly maxKeySize: number;
  /** Called once when the transaction closes. */
  releaseSnapshot(txnId: number): void;
  /** Throws Closed when the database is closed. */
  checkOpen(): void;
}

export class ReadTxn implements Disposable {
  readonly #host: ReadHost;
  /** The commit this snapshot shows. */
  readonly txnId: number;
  readonly #root: number;
  #closed = false;

  private constructor(host: ReadHost, txnId: number, root: number) {
    this.#host = host;
    this.txnId = txnId;
    this.#root = root;
  }

  /** @internal The database's engine hands out read transactions; users call db.beginRead(). */
  static create(host: ReadHost, txnId: number, root: number): ReadTxn {
    return new ReadTxn(host, txnId, root);
  }

  /** A caller-owned copy of the value, or undefined. */
  get(key: Bytes): Buffer | undefined {
    this.#checkOpen();
    // The root of a snapshot is always written by the snapshot's own commit (spec §4.5, rule 13).
    return treeGet(this.#host.source, this.#root, this.txnId, toKey(key, this.#host.maxKeySize));
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
