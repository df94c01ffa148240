// One committed transaction as readLog() hands it out: public result types,
// kept apart from the reader so the package's types do not reach the log file.

export interface LogOp {
  type: 'put' | 'del';
  key: Buffer;
  /** The value put; empty for a delete. */
  value: Buffer;
}

export interface LogCommit {
  txnId: number;
  /** Log position of the record. */
  position: number;
  /** Log position just past the record (where the next record starts, or an alignment gap before it). */
  end: number;
  ops: LogOp[];
}
