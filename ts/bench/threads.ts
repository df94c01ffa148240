// Worker threads for benchmarks that need several threads (the concurrency
// suite), driven synchronously: the runner is a synchronous loop that never
// returns to the event loop, so neither side waits on events. A call is a
// message on a MessagePort plus a counter in shared memory: the caller posts,
// bumps CALL and blocks in Atomics.wait until the worker has posted its reply
// and set DONE; the reply is then taken with receiveMessageOnPort.
//
// A phase runs several workers at once: each gets its call, prepares, counts
// itself READY and blocks until the caller sets GO, so all start together;
// they run until the caller sets STOP (a timed phase) or until their own op
// count, and reply. process.hrtime is one monotonic clock for every thread,
// so the workers' start and end times can be compared.

import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort, type Transferable } from 'node:worker_threads';

/** Words of a worker's call block. */
const CALL = 0;
const DONE = 1;
/** Words of a phase block (shared by the workers of one ThreadGroup). */
const READY = 0;
const GO = 1;
const STOP = 2;

/** How long a caller waits for a reply before it gives up on the worker. */
export const CALL_TIMEOUT_MS = 120_000;
const POLL_MS = 50;

export interface ThreadInit {
  ctl: SharedArrayBuffer;
  phase: SharedArrayBuffer;
  port: MessagePort;
  data: unknown;
}

interface Reply {
  value?: unknown;
  error?: string;
}

/** Blocks until `word` of `a` is `want` (or more), checking `alive` every POLL_MS. */
function waitFor(a: Int32Array, word: number, want: number, alive: () => boolean, what: string, timeoutMs = CALL_TIMEOUT_MS): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = Atomics.load(a, word);
    if (v >= want) return;
    if (!alive()) throw new Error(`${what}: the worker thread exited`);
    if (Date.now() > deadline) throw new Error(`${what}: no answer from the worker thread in ${timeoutMs} ms`);
    Atomics.wait(a, word, v, POLL_MS);
  }
}

/** One worker thread, called synchronously from the thread that made it. */
export class BenchThread {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly ctl: Int32Array;
  private calls = 0;
  private exited = false;

  constructor(
    script: URL,
    data: unknown,
    env: NodeJS.ProcessEnv,
    private readonly phase: SharedArrayBuffer,
  ) {
    const ctl = new SharedArrayBuffer(8);
    this.ctl = new Int32Array(ctl);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const init: ThreadInit = { ctl, phase, port: port2, data };
    this.worker = new Worker(script, { workerData: init, transferList: [port2], env });
    this.worker.on('error', (err) => process.stderr.write(`benchmark worker thread failed: ${err.stack ?? err}\n`));
    // Never keep the process alive for a worker (teardown asks each to exit).
    this.worker.unref();
  }

  /** Posts a call without waiting (see reply()). */
  post(msg: object): void {
    if (this.exited) throw new Error('benchmark call: the worker thread was asked to exit');
    this.port.postMessage(msg);
    this.calls++;
    Atomics.store(this.ctl, CALL, this.calls);
    Atomics.notify(this.ctl, CALL);
  }

  /** Waits for the answer to the last call; throws the worker's error. */
  reply<T>(timeoutMs = CALL_TIMEOUT_MS): T {
    waitFor(this.ctl, DONE, this.calls, () => this.worker.threadId !== -1 || Atomics.load(this.ctl, DONE) >= this.calls, 'benchmark call', timeoutMs);
    const r = receiveMessageOnPort(this.port)?.message as Reply | undefined;
    if (r === undefined) throw new Error('benchmark call: the worker thread set DONE without a reply');
    if (r.error !== undefined) throw new Error(r.error);
    return r.value as T;
  }

  call<T>(msg: object, timeoutMs = CALL_TIMEOUT_MS): T {
    this.post(msg);
    return this.reply<T>(timeoutMs);
  }

  /** Asks the worker to run its exit handler and end; a worker that does not answer is terminated. */
  exit(): void {
    if (this.exited) return;
    try {
      this.call({ op: 'exit' }, 10_000);
    } finally {
      this.exited = true;
      this.port.close();
      void this.worker.terminate();
    }
  }
}

/** Worker threads that run phases together. */
export class ThreadGroup {
  readonly phase = new SharedArrayBuffer(12);
  private readonly words = new Int32Array(this.phase);
  /** Never notified: a timed phase sleeps on it. */
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));
  readonly threads: BenchThread[] = [];

  constructor(
    private readonly script: URL,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  spawn(data: unknown): BenchThread {
    const t = new BenchThread(this.script, data, this.env, this.phase);
    this.threads.push(t);
    return t;
  }

  /**
   * Runs `calls` (thread, message) at once: all start on one GO; after
   * `durationMs` STOP is set (without it, each call ends by itself); returns
   * every reply in order, or throws the first error once all have answered.
   */
  run<T>(calls: readonly [BenchThread, object][], durationMs?: number): T[] {
    const w = this.words;
    Atomics.store(w, READY, 0);
    Atomics.store(w, GO, 0);
    Atomics.store(w, STOP, 0);
    for (const [t, msg] of calls) t.post({ ...msg, phased: true });
    try {
      waitFor(w, READY, calls.length, () => true, 'benchmark phase start');
    } catch (err) {
      Atomics.store(w, STOP, 1);
      throw err;
    }
    Atomics.store(w, GO, 1);
    Atomics.notify(w, GO);
    if (durationMs !== undefined) {
      Atomics.wait(this.sleeper, 0, 0, durationMs);
      Atomics.store(w, STOP, 1);
    }
    // Every reply is taken, even after an error, so no answer is left for the next call.
    const replies = calls.map(([t]) => {
      try {
        return { value: t.reply<T>() };
      } catch (error) {
        return { error };
      }
    });
    Atomics.store(w, STOP, 1);
    const failed = replies.find((r) => 'error' in r);
    if (failed) throw failed.error;
    return replies.map((r) => (r as { value: T }).value);
  }

  exitAll(): void {
    const errors: unknown[] = [];
    for (const t of this.threads) {
      try {
        t.exit();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw errors[0];
  }
}

// ---- the worker's side --------------------------------------------------------------

/** A call's handler: gets the message, returns a structured-cloneable reply. */
export type Handler = (msg: Record<string, unknown>, phase: PhaseControl) => unknown;

/** What a handler of a phased call uses: wait for GO, then poll STOP. */
export interface PhaseControl {
  /** Counts this worker ready and blocks until every worker of the phase is (no-op outside a phase). */
  start(): void;
  /** STOP was set: end the loop. */
  stopped(): boolean;
}

/**
 * The worker's loop: answers calls until 'exit' (whose handler runs too).
 * Typed arrays at the top level of a reply are transferred, not copied.
 */
export function serve(init: ThreadInit, handlers: Record<string, Handler>): void {
  const ctl = new Int32Array(init.ctl);
  const w = new Int32Array(init.phase);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, CALL, seen);
    seen = Atomics.load(ctl, CALL);
    const msg = receiveMessageOnPort(init.port)?.message as Record<string, unknown> | undefined;
    let reply: Reply;
    const transfer: Transferable[] = [];
    const phased = msg?.phased === true;
    let started = !phased;
    const phase: PhaseControl = {
      start() {
        if (started) return;
        started = true;
        Atomics.add(w, READY, 1);
        Atomics.notify(w, READY);
        while (Atomics.load(w, GO) === 0 && Atomics.load(w, STOP) === 0) Atomics.wait(w, GO, 0, POLL_MS);
      },
      stopped: () => Atomics.load(w, STOP) !== 0,
    };
    try {
      if (msg === undefined) throw new Error('a call without a message');
      const h = handlers[String(msg.op)];
      if (h === undefined) throw new Error(`no handler for '${String(msg.op)}'`);
      const value = h(msg, phase);
      if (value !== null && typeof value === 'object') {
        for (const v of Object.values(value)) if (ArrayBuffer.isView(v) && !(v.buffer instanceof SharedArrayBuffer)) transfer.push(v.buffer as ArrayBuffer);
      }
      reply = { value };
    } catch (err) {
      reply = { error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    // A phased call that failed before start() must still count itself, or the phase never starts.
    phase.start();
    init.port.postMessage(reply, transfer);
    Atomics.store(ctl, DONE, seen);
    Atomics.notify(ctl, DONE);
    if (msg?.op === 'exit') break;
  }
  init.port.close();
}

/**
 * The compiled worker script `name` beside the module at `from` (its
 * import.meta.url); from a TypeScript module (under vitest) the one in dist/,
 * since worker threads run JavaScript only (npm run build makes it).
 */
export function workerScript(from: string, name: string): URL {
  const file = fileURLToPath(from);
  if (!file.endsWith('.ts')) return new URL(`./${name}`, from);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  return pathToFileURL(path.join(root, 'dist', path.relative(path.join(root, 'ts'), path.dirname(file)), name));
}
