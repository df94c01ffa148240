// Peers for the multi-process tests: database handles in child processes and
// worker threads, each running ts/testing/peer.ts compiled, driven by request
// and reply. usePeers() compiles the engine once per test file, starts peers
// on demand and kills whatever a test leaves running.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { PEER_WORKER_DATA, type PeerAnswer, type PeerEvent, type PeerMessage, type Request } from './peer.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A failed request: the peer's NorthstarError code (or 'Error') and its message. */
export class PeerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Peer {
  readonly kind: 'process' | 'thread';
  /** The peer's process id (a thread's is this process's). */
  readonly pid: number;
  /** Events the peer sent ('ack', ...), in order. */
  readonly events: PeerEvent[];
  /** Sends a request; resolves with its reply, rejects with a PeerError (or if the peer dies first). */
  call<T = unknown>(op: string, args?: Omit<Request, 'op'>): Promise<T>;
  /** Resolves when `count` events named `event` have arrived. */
  waitForEvents(event: string, count: number): Promise<void>;
  /** SIGKILL (a process) or terminate() (a thread); resolves once it is gone and reaped. */
  kill(): Promise<void>;
  /** Closes the handle (if open) and ends the peer. */
  stop(): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Everything the peer wrote to stderr (processes only). */
  readonly stderr: () => string;
}

export interface Peers {
  /** A child process; `env` is added to this process's environment (NORTHSTAR_NATIVE carries over). */
  process(env?: Record<string, string>): Promise<Peer>;
  /** A worker thread of this process. */
  thread(env?: Record<string, string>): Promise<Peer>;
}

/**
 * The engine compiled for peers into a scratch directory (as ts/hard/crash.ts
 * does): tsc of the current sources, so a child runs exactly the code under
 * test even when dist/ is stale; crates/ and node_modules/ linked beside it for
 * the native loader, which looks two levels up.
 */
function compile(scratch: string): string {
  const dist = nodePath.join(scratch, 'dist');
  const tsc = spawnSync(
    process.execPath,
    [nodePath.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', nodePath.join(ROOT, 'tsconfig.json'), '--outDir', dist, '--declaration', 'false', '--sourceMap', 'false'],
    { encoding: 'utf8' },
  );
  const script = nodePath.join(dist, 'testing', 'peer.js');
  if (!fs.existsSync(script)) throw new Error(`tsc produced no testing/peer.js: ${tsc.stdout}${tsc.stderr}`);
  fs.symlinkSync(nodePath.join(ROOT, 'crates'), nodePath.join(scratch, 'crates'));
  fs.symlinkSync(nodePath.join(ROOT, 'node_modules'), nodePath.join(scratch, 'node_modules'));
  fs.copyFileSync(nodePath.join(ROOT, 'package.json'), nodePath.join(scratch, 'package.json')); // type: module, and the version the native loader checks the addon against
  return script;
}

/** Registers the hooks: compile before the file's tests, kill leftover peers after each test. */
export function usePeers(): Peers {
  let scratch = '';
  let script = '';
  const live: Peer[] = [];
  beforeAll(() => {
    scratch = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-peers-'));
    script = compile(scratch);
  }, 60_000);
  afterEach(async () => {
    await Promise.all(live.splice(0).map((p) => p.kill()));
  });
  afterAll(() => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  const start = (kind: 'process' | 'thread', env: Record<string, string>): Promise<Peer> => {
    const events: PeerEvent[] = [];
    const waiting: Array<{ resolve: (m: PeerAnswer) => void; reject: (e: Error) => void }> = [];
    const eventWaiters: Array<{ event: string; count: number; resolve: () => void; reject: (e: Error) => void }> = [];
    let stderr = '';
    let pid = 0;
    let gone: Error | null = null;
    let ready: (pid: number) => void = () => {};
    const readyPid = new Promise<number>((resolve) => (ready = resolve));

    const receive = (m: PeerMessage): void => {
      if ('event' in m) {
        if (m.event === 'ready') return ready(m.pid as number);
        events.push(m);
        for (let i = eventWaiters.length - 1; i >= 0; i--) {
          const w = eventWaiters[i]!;
          if (events.filter((e) => e.event === w.event).length >= w.count) {
            eventWaiters.splice(i, 1);
            w.resolve();
          }
        }
        return;
      }
      waiting.shift()?.resolve(m as PeerAnswer);
    };
    const died = (how: string): void => {
      gone = new Error(`${kind} peer ${how}${stderr ? `; stderr: ${stderr}` : ''}`);
      for (const w of waiting.splice(0)) w.reject(gone);
      for (const w of eventWaiters.splice(0)) w.reject(gone);
    };

    let post: (req: Request) => void;
    let kill: () => Promise<void>;
    let exited: Promise<{ code: number | null; signal: string | null }>;
    if (kind === 'process') {
      const proc: ChildProcess = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let pending = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) receive(JSON.parse(line) as PeerMessage);
      });
      proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // An EPIPE after the peer died surfaces as the exit instead.
      proc.stdin!.on('error', () => {});
      exited = new Promise((resolve) =>
        proc.on('close', (code, signal) => {
          died(`exited (${code ?? signal})`);
          resolve({ code, signal });
        }),
      );
      post = (req) => proc.stdin!.write(`${JSON.stringify(req)}\n`);
      kill = async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        await exited;
      };
    } else {
      const worker = new Worker(pathToFileURL(script), { workerData: PEER_WORKER_DATA, env: { ...process.env, ...env }, stderr: true });
      worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      worker.on('message', receive);
      worker.on('error', (err) => (stderr += String(err.stack ?? err)));
      exited = new Promise((resolve) =>
        worker.on('exit', (code) => {
          died(`exited (${code})`);
          resolve({ code, signal: null });
        }),
      );
      post = (req) => worker.postMessage(req);
      kill = async () => {
        await worker.terminate();
        await exited;
      };
    }

    const peer: Peer = {
      kind,
      get pid() {
        return pid;
      },
      events,
      call<T>(op: string, args: Omit<Request, 'op'> = {}): Promise<T> {
        if (gone) return Promise.reject(gone);
        return new Promise<PeerAnswer>((resolve, reject) => {
          waiting.push({ resolve, reject });
          post({ op, ...args });
        }).then((m) => {
          if ('error' in m) throw new PeerError(m.error.code, `${kind} peer, ${op}: ${m.error.message}`);
          return (m as { reply: T }).reply;
        });
      },
      waitForEvents(event, count) {
        if (events.filter((e) => e.event === event).length >= count) return Promise.resolve();
        if (gone) return Promise.reject(gone);
        return new Promise((resolve, reject) => eventWaiters.push({ event, count, resolve, reject }));
      },
      kill,
      async stop() {
        if (gone) return;
        await peer.call('close');
        post({ op: 'exit' });
        await exited;
      },
      exited,
      stderr: () => stderr,
    };
    live.push(peer);
    return Promise.race([readyPid, exited.then(() => Promise.reject(gone))]).then((p) => {
      pid = p;
      return peer;
    });
  };

  return {
    process: (env = {}) => start('process', env),
    thread: (env = {}) => start('thread', env),
  };
}
