// One error class with stable codes (docs/api.md "Errors" lists them). Callers
// branch on `code`, never on the message.

export const ErrorCode = {
  /** Another write transaction is live. */
  WriteBusy: 'WriteBusy',
  /** The requested snapshot is not retained (time travel, commit log issue). */
  SnapshotNotFound: 'SnapshotNotFound',
  /** A page or meta failed validation; nothing from it was returned. */
  Corrupt: 'Corrupt',
  /** The operating system reported an I/O error. */
  IoError: 'IoError',
  /** The disk or quota is full (ENOSPC, EDQUOT). */
  OutOfSpace: 'OutOfSpace',
  /** The file was written by a newer, incompatible format version. */
  UnsupportedFormat: 'UnsupportedFormat',
  /** A caller passed something the API does not accept; nothing was changed. */
  InvalidArgument: 'InvalidArgument',
  /** The transaction or database was closed. */
  Closed: 'Closed',
  /** An AbortSignal passed to a wait (beginWriteAsync, write, openAsync, a queue's claim) was aborted; its reason is the cause. */
  Aborted: 'Aborted',
  /** A task queue's complete, fail or renew came with a claim that is no longer the task's current one; nothing was changed. */
  LeaseLost: 'LeaseLost',
  /** A write on a replica, or on a primary another primary has replaced in the replication stream (ts/replication/); nothing was written. */
  NotPrimary: 'NotPrimary',
  /** Replication could not reach its stream in time (NATS down or unreachable, or its client packages not installed): the local commit stands, the stream has not acknowledged it. */
  ReplicationUnavailable: 'ReplicationUnavailable',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorDetails {
  /** Page the problem was found in, when there is one. */
  pageId?: number;
  /** File the problem concerns. */
  path?: string;
  cause?: unknown;
}

export class NorthstarError extends Error {
  readonly code: ErrorCode;
  readonly pageId: number | undefined;
  readonly path: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'NorthstarError';
    this.code = code;
    this.pageId = details.pageId;
    this.path = details.path;
  }
}

/** Maps a Node.js fs error to IoError or OutOfSpace, keeping it as the cause. */
export function ioError(err: unknown, what: string, path?: string): NorthstarError {
  if (err instanceof NorthstarError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const kind = code === 'ENOSPC' || code === 'EDQUOT' ? ErrorCode.OutOfSpace : ErrorCode.IoError;
  const msg = err instanceof Error ? err.message : String(err);
  return new NorthstarError(kind, `${what}: ${msg}`, { path, cause: err });
}

/** @internal `err` itself when it is a NorthstarError, else an IoError wrapping it (`what: ` before its text when given). */
export function asIoError(err: unknown, what?: string): NorthstarError {
  if (err instanceof NorthstarError) return err;
  return new NorthstarError('IoError', what === undefined ? String(err) : `${what}: ${String(err)}`, { cause: err });
}
