// The native SharedFile (crates/northstar-native/src/napi/shared_file.rs) through
// its JavaScript API: words shared between objects, threads and processes,
// the atomics' semantics, the OS lock (within a process, against a child, and
// released by the kernel when the child is SIGKILLed), close(), view() (the
// table as an ArrayBuffer: what it reads, and that it keeps the mapping alive
// exactly as long as it is reachable) and wordReader(), and bad arguments,
// which must throw TypeError/RangeError/Error and never crash.
//
// Skipped when the addon is not loaded (the `fallback` project, or no build),
// unless NORTHSTAR_REQUIRE_NATIVE=1 (and NORTHSTAR_NATIVE is not 0): then it
// fails. There is no fallback twin to run it against.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { nativeRequired } from '../testing/parity.js';
import { useTempDir } from '../testing/fixtures.js';
import { nativeLoadError } from './loader.js';
import { nativeSharedFile, wordReader, wordWriter, type SharedFile } from './shared_file.js';

const Native = nativeSharedFile();
const skip = Native === null && !nativeRequired;
/** The generated loader, for code that runs in a child process or a worker. */
const BINDING = fileURLToPath(new URL('../../crates/northstar-native/index.cjs', import.meta.url));
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

describe('nativeSharedFile', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('is null when NORTHSTAR_NATIVE=0', () => {
    vi.stubEnv('NORTHSTAR_NATIVE', '0');
    expect(nativeSharedFile()).toBeNull();
  });
});

describe.skipIf(skip)('SharedFile', () => {
  const t = useTempDir('northstar-shared-file-');
  const lockPath = (): string => nodePath.join(t.dir, 'db.lock');

  const Shared = (): typeof SharedFile => {
    if (Native === null) {
      throw new Error(`native SharedFile required (NORTHSTAR_REQUIRE_NATIVE=1) but not loaded: ${nativeLoadError}`);
    }
    return Native;
  };
  /** Opens lockPath() (or `path`), closed after the test. */
  const open = (size = 64, path = lockPath()): SharedFile => t.track(new (Shared())(path, size));

  /** The class of what `call` throws: TypeError, RangeError or Error; fails if it returns. */
  function thrown(call: () => unknown): { kind: string; message: string; code: unknown } {
    try {
      call();
    } catch (e) {
      if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${String(e)}`);
      const kind = e instanceof TypeError ? 'TypeError' : e instanceof RangeError ? 'RangeError' : e.constructor === Error ? 'Error' : e.constructor.name;
      return { kind, message: e.message, code: (e as { code?: unknown }).code };
    }
    throw new Error('did not throw');
  }

  describe('words', () => {
    it('creates a zeroed file of the requested size', () => {
      const f = open(64);
      expect(f.size).toBe(64);
      expect(fs.statSync(lockPath()).size).toBe(64);
      const out = new Float64Array(8).fill(-1);
      f.loadMany(0, out);
      expect([...out]).toEqual(new Array(8).fill(0));
    });

    it.runIf(process.platform !== 'win32')('creates the file with mode 0o644 (less the umask)', () => {
      open(8);
      expect(fs.statSync(lockPath()).mode & 0o777).toBe(0o644 & ~process.umask());
    });

    it('two objects on one path see each other’s stores, as little-endian i64 in the file', () => {
      const a = open(32);
      const b = open(32);
      a.store(1, MAX_SAFE);
      expect(b.load(1)).toBe(MAX_SAFE);
      b.store(2, -MAX_SAFE);
      expect(a.load(2)).toBe(-MAX_SAFE);
      a.store(3, 0x0102_0304_0506);
      const bytes = fs.readFileSync(lockPath());
      expect(bytes.readBigInt64LE(8)).toBe(BigInt(MAX_SAFE));
      expect(bytes.readBigInt64LE(16)).toBe(BigInt(-MAX_SAFE));
      expect(bytes.readBigInt64LE(24)).toBe(0x0102_0304_0506n);
    });

    it('compareExchange swaps only when the word holds `expected`', () => {
      const f = open(16);
      expect(f.compareExchange(0, 1, 5)).toBe(false);
      expect(f.load(0)).toBe(0);
      expect(f.compareExchange(0, 0, 5)).toBe(true);
      expect(f.load(0)).toBe(5);
      expect(f.compareExchange(0, 0, 6)).toBe(false);
      expect(f.compareExchange(0, 5, -MAX_SAFE)).toBe(true);
      expect(f.load(0)).toBe(-MAX_SAFE);
      expect(f.load(1)).toBe(0);
    });

    it('fetchAdd returns the previous value and refuses, word unchanged, to leave ±(2^53 − 1)', () => {
      const f = open(16);
      expect(f.fetchAdd(1, 10)).toBe(0);
      expect(f.fetchAdd(1, -3)).toBe(10);
      expect(f.load(1)).toBe(7);
      f.store(1, MAX_SAFE - 1);
      expect(f.fetchAdd(1, 1)).toBe(MAX_SAFE - 1);
      expect(thrown(() => f.fetchAdd(1, 1)).kind).toBe('RangeError');
      expect(f.load(1)).toBe(MAX_SAFE);
      f.store(1, -MAX_SAFE);
      expect(thrown(() => f.fetchAdd(1, -1)).kind).toBe('RangeError');
      expect(f.load(1)).toBe(-MAX_SAFE);
      expect(f.load(0)).toBe(0);
    });

    it('loadMany reads consecutive words, up to the last one', () => {
      const f = open(40);
      for (let w = 0; w < 5; w++) f.store(w, w * 100 - 1);
      const out = new Float64Array(3);
      f.loadMany(2, out);
      expect([...out]).toEqual([199, 299, 399]);
      f.loadMany(0, new Float64Array(5));
      f.loadMany(5, new Float64Array(0));
      const sub = new Float64Array(8).subarray(3, 5);
      f.loadMany(0, sub);
      expect([...sub]).toEqual([-1, 99]);
      expect(thrown(() => f.loadMany(3, out)).kind).toBe('RangeError');
      expect(thrown(() => f.loadMany(6, new Float64Array(0))).kind).toBe('RangeError');
    });

    it('growing an existing smaller file keeps its content; a smaller size never shrinks it', () => {
      const head = Buffer.alloc(16);
      head.writeBigInt64LE(42n, 0);
      head.writeBigInt64LE(-7n, 8);
      fs.writeFileSync(lockPath(), head);
      const big = open(4096);
      expect(fs.statSync(lockPath()).size).toBe(4096);
      expect(big.load(0)).toBe(42);
      expect(big.load(1)).toBe(-7);
      expect(big.load(511)).toBe(0);
      big.store(511, 9);
      const small = open(8);
      expect(small.size).toBe(8);
      expect(small.load(0)).toBe(42);
      expect(fs.statSync(lockPath()).size).toBe(4096);
      expect(big.load(511)).toBe(9);
    });

    it('a word outside ±(2^53 − 1), written by something else, is a RangeError, not a rounded number', () => {
      const bytes = Buffer.alloc(16);
      bytes.writeBigInt64LE(2n ** 53n, 8);
      fs.writeFileSync(lockPath(), bytes);
      const f = open(16);
      expect(thrown(() => f.load(1)).kind).toBe('RangeError');
      expect(thrown(() => f.fetchAdd(1, -1)).kind).toBe('RangeError');
      expect(thrown(() => f.loadMany(0, new Float64Array(2))).kind).toBe('RangeError');
      expect(f.compareExchange(1, 0, 1)).toBe(false);
      f.store(1, 3);
      expect(f.load(1)).toBe(3);
    });

    it('two worker threads doing 100k fetchAdd each on one word, via their own objects, end at exactly 200k', async () => {
      const counter = open(8);
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        const { SharedFile } = require(workerData.binding);
        const f = new SharedFile(workerData.path, 8);
        for (let i = 0; i < 100000; i++) f.fetchAdd(0, 1);
        f.close();
        parentPort.postMessage('done');`;
      const run = (): Promise<void> =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { binding: BINDING, path: lockPath() } });
          w.once('error', reject);
          w.once('exit', (exitCode) => (exitCode === 0 ? resolve() : reject(new Error(`worker exited with ${exitCode}`))));
        });
      await Promise.all([run(), run()]);
      expect(counter.load(0)).toBe(200_000);
    });
  });

  describe('the lock', () => {
    it('excludes a second object in the same process until the first unlocks or closes', () => {
      const a = open(8);
      const b = open(8);
      expect(a.tryLock()).toBe(true);
      expect(a.tryLock()).toBe(true); // idempotent on the holder
      expect(b.tryLock()).toBe(false);
      b.unlock(); // not held: a no-op
      expect(b.tryLock()).toBe(false);
      a.unlock();
      expect(b.tryLock()).toBe(true);
      expect(a.tryLock()).toBe(false);
      b.close();
      expect(a.tryLock()).toBe(true);
    });

    it('one unlock() releases a lock taken twice (it is not counted)', () => {
      const a = open(8);
      const b = open(8);
      a.tryLock();
      a.tryLock();
      a.unlock();
      expect(b.tryLock()).toBe(true);
    });

    it('is released when a worker holding it exits without close()', async () => {
      const f = open(8);
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        const { SharedFile } = require(workerData.binding);
        parentPort.postMessage(new SharedFile(workerData.path, 8).tryLock());`;
      const w = new Worker(code, { eval: true, workerData: { binding: BINDING, path: lockPath() } });
      const exited = new Promise((resolve) => w.once('exit', resolve));
      expect(await new Promise((resolve) => w.once('message', resolve))).toBe(true);
      await exited;
      expect(f.tryLock()).toBe(true);
    });

    it.runIf(process.platform !== 'win32')(
      'excludes a child process, and the kernel releases it when that child is SIGKILLed',
      async () => {
        const f = open(8);
        const code = `
          const { SharedFile } = require(${JSON.stringify(BINDING)});
          const f = new SharedFile(${JSON.stringify(lockPath())}, 8);
          process.stdout.write(f.tryLock() ? 'locked\\n' : 'busy\\n');
          setInterval(() => {}, 60000);`;
        const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
        const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
        try {
          const line = await new Promise<string>((resolve, reject) => {
            let out = '';
            child.stdout.on('data', (chunk: Buffer) => {
              out += chunk.toString();
              if (out.includes('\n')) resolve(out.trim());
            });
            child.once('exit', () => reject(new Error(`child exited before locking: ${out}`)));
          });
          expect(line).toBe('locked');
          expect(f.tryLock()).toBe(false);
        } finally {
          child.kill('SIGKILL');
        }
        expect(await exited).toBe('SIGKILL');
        expect(f.tryLock()).toBe(true);
      },
    );

    it.runIf(process.platform !== 'win32')('a child process cannot take a lock this process holds', async () => {
      const f = open(8);
      expect(f.tryLock()).toBe(true);
      const code = `
        const { SharedFile } = require(${JSON.stringify(BINDING)});
        process.stdout.write(String(new SharedFile(${JSON.stringify(lockPath())}, 8).tryLock()));`;
      const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      expect(await new Promise((resolve) => child.once('close', resolve))).toBe(0);
      expect(out).toBe('false');
    });

    it('an object the garbage collector finalizes releases its lock and mapping', async () => {
      // In a child with --expose-gc: vitest's own process has no gc().
      const code = `
        const { SharedFile } = require(${JSON.stringify(BINDING)});
        const path = ${JSON.stringify(lockPath())};
        (() => { if (!new SharedFile(path, 8).tryLock()) throw new Error('first lock failed'); })();
        const b = new SharedFile(path, 8);
        (async () => {
          for (let i = 0; i < 20 && !b.tryLock(); i++) { gc(); await new Promise((r) => setImmediate(r)); }
          process.stdout.write(String(b.tryLock()));
        })();`;
      const child = spawn(process.execPath, ['--expose-gc', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      expect(await new Promise((resolve) => child.once('close', resolve))).toBe(0);
      expect(out).toBe('true');
    });
  });

  describe('bumpAndWake and watch (spec/concurrency_v0.md §2.6)', () => {
    const linux = process.platform === 'linux';
    /** Resolves with the number of calls seen once `calls()` reaches n, or rejects after 5 s. */
    const reach = (calls: () => number, n: number): Promise<number> =>
      new Promise((resolve, reject) => {
        const start = Date.now();
        const look = (): void => {
          if (calls() >= n) resolve(calls());
          else if (Date.now() - start > 5000) reject(new Error(`only ${calls()} of ${n} calls`));
          else setTimeout(look, 1);
        };
        look();
      });

    it('bumpAndWake adds one and returns the previous value', () => {
      const f = open(64);
      f.store(3, 41);
      expect(f.bumpAndWake(3)).toBe(41);
      expect(f.load(3)).toBe(42);
    });

    it.runIf(linux)('a watch is called after a bumpAndWake of its word through another object, on this thread, and not after close()', async () => {
      const watcher = open(64);
      const changer = open(64);
      let calls = 0;
      const w = watcher.watch(5, () => calls++);
      expect(w).not.toBeNull();
      changer.bumpAndWake(5);
      await reach(() => calls, 1);
      changer.bumpAndWake(5);
      await reach(() => calls, 2);
      changer.bumpAndWake(4); // another word: not this watch's
      changer.store(5, changer.load(5) + 1); // a change nobody signalled: seen at the next wake or the thread's timeout, not now
      w!.close();
      w!.close(); // idempotent
      const before = calls;
      changer.bumpAndWake(5);
      await new Promise((r) => setTimeout(r, 50));
      expect(calls).toBe(before);
    });

    it.runIf(linux)('a bumpAndWake in another process wakes a watch here; the watch outlives close() of its SharedFile', async () => {
      const f = open(64);
      let calls = 0;
      const w = f.watch(7, () => calls++)!;
      f.close();
      const code = `
        const { SharedFile } = require(${JSON.stringify(BINDING)});
        const f = new SharedFile(${JSON.stringify(lockPath())}, 64);
        f.bumpAndWake(7);
        f.close();
      `;
      const child = spawn(process.execPath, ['-e', code], { stdio: 'inherit' });
      expect(await new Promise((resolve) => child.once('close', resolve))).toBe(0);
      await reach(() => calls, 1);
      w.close();
    });

    it.runIf(!linux)('watch is null where the OS has no cross-process futex (callers look on a timer)', () => {
      expect(open(64).watch(5, () => {})).toBeNull();
    });

    it('watch and bumpAndWake check their word; a closed object throws', () => {
      const f = open(64);
      expect(thrown(() => f.bumpAndWake(8)).kind).toBe('RangeError');
      expect(thrown(() => f.watch(8, () => {})).kind).toBe('RangeError');
      f.close();
      expect(thrown(() => f.bumpAndWake(1)).message).toBe('closed');
      expect(thrown(() => f.watch(1, () => {})).message).toBe('closed');
    });
  });

  describe('close', () => {
    it('is idempotent; afterwards every other method throws Error("closed"), size stays readable', () => {
      const a = open(16);
      const b = open(16);
      a.tryLock();
      a.close();
      a.close();
      expect(b.tryLock()).toBe(true); // closing released the lock
      const calls: [string, () => unknown][] = [
        ['load', () => a.load(0)],
        ['store', () => a.store(0, 1)],
        ['compareExchange', () => a.compareExchange(0, 0, 1)],
        ['fetchAdd', () => a.fetchAdd(0, 1)],
        ['loadMany', () => a.loadMany(0, new Float64Array(1))],
        ['tryLock', () => a.tryLock()],
        ['unlock', () => a.unlock()],
        ['view', () => a.view()],
        // Closed wins over bad arguments.
        ['load with a bad word', () => (a.load as (w: unknown) => number)('x')],
      ];
      for (const [name, call] of calls) {
        expect({ name, ...thrown(call) }).toMatchObject({ name, kind: 'Error', message: 'closed' });
      }
      expect(a.size).toBe(16);
      expect(b.load(0)).toBe(0);
    });
  });

  /** Runs `code` in a child node with `flags`; resolves to its stdout once it exits 0. */
  async function child(code: string, flags: string[] = []): Promise<string> {
    const c = spawn(process.execPath, [...flags, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exitCode = await new Promise((resolve) => c.once('close', resolve));
    if (exitCode !== 0) throw new Error(`child exited with ${String(exitCode)}: ${out}`);
    return out;
  }

  /** Lines of /proc/self/maps mapping `path`: one per live mapping of it (Linux). */
  const mappingsOf = (path: string): number =>
    fs
      .readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((line) => line.endsWith(` ${path}`)).length;
  /** `mappingsOf` as source, for a child process. */
  const MAPPINGS_OF = `(path) => require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((line) => line.endsWith(' ' + path)).length`;

  /**
   * Word `w` from the two 32-bit halves of a view (little-endian CPU): high,
   * low, high again, retried until the two highs agree. Each half is one
   * atomic load and the loads stay in program order, so the low half comes
   * from a store made while the high half was `hi`: the result is a value
   * the word held, provided the word only ever moves one way (otherwise its
   * high half may change and change back between the reads).
   */
  function fromHalves(halves: Int32Array, w: number): number {
    for (;;) {
      const hi = Atomics.load(halves, 2 * w + 1);
      const lo = Atomics.load(halves, 2 * w);
      if (Atomics.load(halves, 2 * w + 1) === hi) return hi * 2 ** 32 + (lo >>> 0);
    }
  }

  describe('view', () => {
    it('is an ArrayBuffer over the table: it sees store(), fetchAdd() and compareExchange() of another object on the path', () => {
      const a = open(64);
      const b = open(64);
      const view = a.view();
      expect(view).toBeInstanceOf(ArrayBuffer);
      expect(view.byteLength).toBe(64);
      const halves = new Int32Array(view);
      const whole = new BigInt64Array(view);
      const values = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 0x0102_0304_0506, -1, -(2 ** 31), -(2 ** 32) - 1, MAX_SAFE, -MAX_SAFE];
      for (const [i, value] of values.entries()) {
        const w = i % 8;
        b.store(w, value);
        expect(a.load(w)).toBe(value);
        if (value >= 0 && value < 2 ** 31) expect(Atomics.load(halves, 2 * w)).toBe(value);
        expect(Number(Atomics.load(whole, w))).toBe(value);
        expect(fromHalves(halves, w)).toBe(value);
      }
      b.store(3, 10);
      b.fetchAdd(3, 5);
      expect(Atomics.load(halves, 6)).toBe(15);
      expect(b.compareExchange(3, 15, 2 ** 40)).toBe(true);
      expect(fromHalves(halves, 3)).toBe(2 ** 40);
      expect(Atomics.load(halves, 6)).toBe(0);
      expect(Atomics.load(halves, 7)).toBe(2 ** 8);
    });

    it('each call is a new ArrayBuffer over the same memory', () => {
      const f = open(16);
      const [x, y] = [f.view(), f.view()];
      expect(x).not.toBe(y);
      f.store(1, 77);
      expect(Atomics.load(new Int32Array(x), 2)).toBe(77);
      expect(Atomics.load(new Int32Array(y), 2)).toBe(77);
    });

    it.runIf(process.platform !== 'win32')('sees the stores of a child process', async () => {
      const f = open(64);
      const halves = new Int32Array(f.view());
      await child(`
        const { SharedFile } = require(${JSON.stringify(BINDING)});
        const f = new SharedFile(${JSON.stringify(lockPath())}, 64);
        f.store(2, 123456); f.store(5, -(2 ** 40) - 3); f.store(7, ${MAX_SAFE});`);
      expect(Atomics.load(halves, 4)).toBe(123456);
      expect(fromHalves(halves, 5)).toBe(-(2 ** 40) - 3);
      expect(fromHalves(halves, 7)).toBe(MAX_SAFE);
      expect(f.load(7)).toBe(MAX_SAFE);
    });

    it('outlives close(), which still releases the lock at once; it then goes on seeing the file’s words', () => {
      const a = open(64);
      const b = open(64);
      expect(a.tryLock()).toBe(true);
      const halves = new Int32Array(a.view());
      a.close();
      expect(b.tryLock()).toBe(true);
      b.store(1, 4242);
      expect(Atomics.load(halves, 2)).toBe(4242);
      expect(thrown(() => a.view())).toMatchObject({ kind: 'Error', message: 'closed' });
    });

    it.runIf(process.platform === 'linux')('close() closes the file descriptor while a view keeps the mapping', () => {
      const fdsOf = (path: string): number =>
        fs.readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return fs.readlinkSync(`/proc/self/fd/${fd}`) === path;
          } catch {
            return false; // closed since readdir
          }
        }).length;
      const a = new (Shared())(lockPath(), 64);
      const view = a.view();
      expect(fdsOf(lockPath())).toBe(1);
      a.close();
      expect(fdsOf(lockPath())).toBe(0);
      expect(fs.readFileSync('/proc/self/maps', 'utf8')).toContain(lockPath());
      expect(view.byteLength).toBe(64);
    });

    it.runIf(process.platform === 'linux')(
      '10,000 views (of 10,000 closed objects, and of one object) keep their mappings until collected, then release them all',
      async () => {
        open(4096).store(0, 7);
        const out = await child(
          `
          const { SharedFile } = require(${JSON.stringify(BINDING)});
          const path = ${JSON.stringify(lockPath())};
          const mappings = ${MAPPINGS_OF};
          const before = mappings(path);
          let views = [];
          for (let i = 0; i < 10000; i++) {
            const f = new SharedFile(path, 4096);
            views.push(f.view());
            f.close();
          }
          const held = mappings(path);
          const one = new SharedFile(path, 4096);
          for (let i = 0; i < 10000; i++) views.push(one.view());
          one.close();
          const heldOne = mappings(path);
          const readable = views.every((v) => Atomics.load(new Int32Array(v), 0) === 7);
          views = null;
          (async () => {
            // Until collected: up to 20 s, a wait for the event rather than a bound (a loaded machine collects late).
            for (const end = Date.now() + 20_000; Date.now() < end && mappings(path) > before; ) {
              gc();
              await new Promise((r) => setTimeout(r, 10));
            }
            process.stdout.write(JSON.stringify({ before, held, heldOne, readable, after: mappings(path) }));
          })();`,
          ['--expose-gc'],
        );
        expect(JSON.parse(out)).toEqual({ before: 0, held: 10_000, heldOne: 10_001, readable: true, after: 0 });
      },
      60_000,
    );

    it.runIf(process.platform === 'linux')('views held by a worker are released when it exits', async () => {
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        const { SharedFile } = require(workerData.binding);
        globalThis.views = [];
        for (let i = 0; i < 100; i++) {
          const f = new SharedFile(workerData.path, 64);
          globalThis.views.push(f.view());
          f.close();
        }
        parentPort.postMessage('held');
        // Stay alive (the listener keeps the worker's loop going) until the parent has counted.
        parentPort.once('message', () => parentPort.close());`;
      const w = new Worker(code, { eval: true, workerData: { binding: BINDING, path: lockPath() } });
      const exited = new Promise((resolve) => w.once('exit', resolve));
      expect(await new Promise((resolve) => w.once('message', resolve))).toBe('held');
      expect(mappingsOf(lockPath())).toBe(100);
      w.postMessage('exit');
      await exited;
      // Released at the worker's teardown: wait for it (up to 20 s on a loaded machine), do not time it.
      for (const end = Date.now() + 20_000; Date.now() < end && mappingsOf(lockPath()) > 0; ) await new Promise((r) => setTimeout(r, 10));
      expect(mappingsOf(lockPath())).toBe(0);
    }, 30_000);

    it('is never detached by a transfer: Node copies it (20) or refuses (21+)', () => {
      const f = open(16);
      f.store(1, 9);
      const view = f.view();
      const { port1, port2 } = new MessageChannel();
      try {
        port1.postMessage(view, [view]);
      } catch (e) {
        expect((e as Error).name).toBe('DataCloneError');
      } finally {
        port1.close();
        port2.close();
      }
      expect(view.byteLength).toBe(16);
      expect(Atomics.load(new Int32Array(view), 2)).toBe(9);
    });

    it('loadMany into a view of the same table is a RangeError, table unchanged', () => {
      const f = open(32);
      f.store(0, 5);
      f.store(1, -6);
      const out = new Float64Array(f.view(), 16, 2);
      expect(thrown(() => f.loadMany(0, out)).kind).toBe('RangeError');
      expect([f.load(0), f.load(1), f.load(2), f.load(3)]).toEqual([5, -6, 0, 0]);
    });
  });

  /** view() throws as in a runtime without external ArrayBuffers; returns the spy. */
  const withoutView = (f: SharedFile) =>
    vi.spyOn(f, 'view').mockImplementation(() => {
      throw Object.assign(new Error('no external buffers'), { code: 'ERR_NO_EXTERNAL_BUFFERS' });
    });

  describe('wordWriter', () => {
    it('stores what store() stores, for every kind of value, seen by load()', () => {
      const f = open(64);
      const write = wordWriter(f);
      const values = [0, 1, -1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), 0x0102_0304_0506, MAX_SAFE, -MAX_SAFE];
      for (const [i, value] of values.entries()) {
        write(i % 8, value);
        expect(f.load(i % 8)).toBe(value);
      }
    });

    it('throws what store() throws for a bad word or value, and stores nothing', () => {
      const f = open(48);
      const write = wordWriter(f);
      for (const word of ['0', undefined, null, 0n, {}, Number.NaN, -1, 1.5, 6, 2 ** 32, Infinity]) {
        const w = thrown(() => (write as (w: unknown, v: number) => void)(word, 7));
        const s = thrown(() => (f.store as (w: unknown, v: number) => void)(word, 7));
        const name = `word ${typeof word} ${String(word)}`;
        expect({ name, kind: w.kind, code: w.code }).toEqual({ name, kind: s.kind, code: s.code });
      }
      for (const value of ['1', undefined, 1n, Number.NaN, 1.5, 2 ** 53, -(2 ** 53), Infinity]) {
        const w = thrown(() => (write as (w: number, v: unknown) => void)(2, value));
        const s = thrown(() => (f.store as (w: number, v: unknown) => void)(2, value));
        const name = `value ${typeof value} ${String(value)}`;
        expect({ name, kind: w.kind, code: w.code }).toEqual({ name, kind: s.kind, code: s.code });
      }
      for (let w = 0; w < 6; w++) expect(f.load(w)).toBe(0);
    });

    it('falls back to store() when view() throws', () => {
      const f = open(16);
      withoutView(f);
      const store = vi.spyOn(f, 'store');
      const write = wordWriter(f);
      write(1, 2 ** 40);
      expect(store).toHaveBeenCalledWith(1, 2 ** 40);
      expect(f.load(1)).toBe(2 ** 40);
    });
  });

  describe('wordReader', () => {
    it('reads what load() reads, for every kind of value', () => {
      const f = open(64);
      const read = wordReader(f);
      const values = [0, 1, -1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), 0x0102_0304_0506, MAX_SAFE, -MAX_SAFE];
      for (const [i, value] of values.entries()) {
        f.store(i % 8, value);
        expect(read(i % 8)).toBe(value);
        expect(read(i % 8)).toBe(f.load(i % 8));
      }
    });

    it('throws what load() throws for a bad word or an unsafe value', () => {
      const bytes = Buffer.alloc(48);
      bytes.writeBigInt64LE(2n ** 53n, 8);
      bytes.writeBigInt64LE(-(2n ** 63n), 16);
      bytes.writeBigInt64LE(2n ** 53n + 1n, 32); // rounds to 2^53 as a number
      bytes.writeBigInt64LE(-(2n ** 53n), 40);
      fs.writeFileSync(lockPath(), bytes);
      const f = open(48);
      const read = wordReader(f);
      for (const w of [1, 2, 4, 5]) {
        expect(thrown(() => read(w))).toMatchObject({ kind: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
        expect(thrown(() => f.load(w)).kind).toBe('RangeError');
      }
      for (const word of ['0', undefined, null, 0n, {}, Number.NaN, -1, 1.5, 6, 2 ** 32, Infinity]) {
        const r = thrown(() => (read as (w: unknown) => number)(word));
        const l = thrown(() => (f.load as (w: unknown) => number)(word));
        const name = `${typeof word} ${String(word)}`;
        expect({ name, kind: r.kind, code: r.code }).toEqual({ name, kind: l.kind, code: l.code });
      }
      expect(read(3)).toBe(0);
      expect(read(-0)).toBe(0);
    });

    it('falls back to load() when view() throws', () => {
      const f = open(16);
      const view = withoutView(f);
      const load = vi.spyOn(f, 'load');
      const read = wordReader(f);
      f.store(1, 2 ** 40);
      expect(read(1)).toBe(2 ** 40);
      expect(view).toHaveBeenCalledOnce();
      expect(load).toHaveBeenCalledWith(1);
      f.close();
      expect(thrown(() => read(1))).toMatchObject({ kind: 'Error', message: 'closed' });
    });

    it('does not see close(): it keeps reading the file’s words', () => {
      const a = open(16);
      const b = open(16);
      const read = wordReader(a);
      a.close();
      b.store(1, 31);
      expect(read(1)).toBe(31);
    });

    it.runIf(process.platform !== 'win32')(
      'reads only values a child actually stored while it stores across 2^32 boundaries (and so does fromHalves, the word only growing)',
      async () => {
        const f = open(64);
        const read = wordReader(f);
        const halves = new Int32Array(f.view());
        // Every step changes both halves; the high half changes at most steps.
        const base = 3 * 2 ** 32 - 7;
        const step = 1_431_655_765; // about 2^32 / 3
        const steps = 100_000;
        const last = base + steps * step;
        f.store(1, base);
        const done = child(`
          const { SharedFile } = require(${JSON.stringify(BINDING)});
          const f = new SharedFile(${JSON.stringify(lockPath())}, 64);
          for (let k = 1; k <= ${steps}; k++) f.store(1, ${base} + k * ${step});`);
        const bad: string[] = [];
        let [prev, prevHalves, reads, distinct] = [base, base, 0, 0];
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && bad.length < 10) {
          const v = read(1);
          const h = fromHalves(halves, 1);
          reads++;
          for (const [name, value, before] of [['read', v, prev], ['fromHalves', h, prevHalves]] as const) {
            const k = (value - base) / step;
            if (!Number.isInteger(k) || k < 0 || k > steps || value < before) bad.push(`${name} ${value} after ${before}`);
          }
          if (v !== prev) distinct++;
          [prev, prevHalves] = [v, h];
          if (v === last && h === last) break;
        }
        await done;
        expect(bad).toEqual([]);
        expect(prev).toBe(last);
        expect(distinct).toBeGreaterThan(1);
        expect(reads).toBeGreaterThan(distinct);
      },
    );
  });

  describe('bad arguments throw, never crash, and leave the object working', () => {
    type Any = (...args: readonly unknown[]) => unknown;

    it.each([
      ['a number path', [5, 8], 'TypeError'],
      ['no arguments', [], 'TypeError'],
      ['a Buffer path', [Buffer.from('x'), 8], 'TypeError'],
      ['a string size', ['P', '8'], 'TypeError'],
      ['a BigInt size', ['P', 8n], 'TypeError'],
      ['size NaN', ['P', Number.NaN], 'RangeError'],
      ['size 0', ['P', 0], 'RangeError'],
      ['size -8', ['P', -8], 'RangeError'],
      ['size 12 (not a multiple of 8)', ['P', 12], 'RangeError'],
      ['size 8.5', ['P', 8.5], 'RangeError'],
      ['size 64 MiB + 8', ['P', 64 * 2 ** 20 + 8], 'RangeError'],
      ['size 2^53', ['P', 2 ** 53], 'RangeError'],
      ['size Infinity', ['P', Infinity], 'RangeError'],
      ['a path with a NUL byte', ['P\0x', 8], 'RangeError'],
    ])('constructor with %s: %s', (_name, args, kind) => {
      const withPath = args.map((a) => (typeof a === 'string' && a.startsWith('P') ? lockPath() + a.slice(1) : a));
      expect(thrown(() => new (Shared() as unknown as new (...a: unknown[]) => SharedFile)(...withPath)).kind).toBe(kind);
      expect(fs.existsSync(lockPath())).toBe(false);
    });

    it('constructor with a path the OS refuses: Error naming the OS error', () => {
      const S = Shared();
      const dir = thrown(() => new S(t.dir, 8));
      expect(dir).toMatchObject({ kind: 'Error', code: 'EISDIR' });
      expect(dir.message).toContain('EISDIR');
      expect(dir.message).toContain(t.dir);
      expect(thrown(() => new S(nodePath.join(t.dir, 'missing', 'db.lock'), 8))).toMatchObject({ kind: 'Error', code: 'ENOENT' });
      fs.writeFileSync(lockPath(), '');
      expect(thrown(() => new S(nodePath.join(lockPath(), 'db.lock'), 8))).toMatchObject({ kind: 'Error', code: 'ENOTDIR' });
    });

    it.runIf(process.platform === 'linux')('constructor with a FIFO: Error, not a hang or a crash', () => {
      const fifo = nodePath.join(t.dir, 'fifo');
      const mk = spawn('mkfifo', [fifo]);
      return new Promise<void>((resolve) => mk.once('close', () => resolve())).then(() => {
        expect(thrown(() => new (Shared())(fifo, 8))).toMatchObject({ kind: 'Error', code: 'EINVAL' });
      });
    });

    it('constructor called without new: TypeError', () => {
      expect(thrown(() => (Shared() as unknown as Any)(lockPath(), 8)).kind).toBe('TypeError');
      expect(fs.existsSync(lockPath())).toBe(false);
    });

    const badWords: [string, unknown, string][] = [
      ['a string', '0', 'TypeError'],
      ['undefined', undefined, 'TypeError'],
      ['null', null, 'TypeError'],
      ['a BigInt', 0n, 'TypeError'],
      ['an object', {}, 'TypeError'],
      ['NaN', Number.NaN, 'RangeError'],
      ['-1', -1, 'RangeError'],
      ['1.5', 1.5, 'RangeError'],
      ['size / 8 (one past the end)', 8, 'RangeError'],
      ['2^53', 2 ** 53, 'RangeError'],
      ['1e300', 1e300, 'RangeError'],
      ['Infinity', Infinity, 'RangeError'],
      ['-Infinity', -Infinity, 'RangeError'],
    ];
    const badValues: [string, unknown, string][] = [
      ['a string', '1', 'TypeError'],
      ['undefined', undefined, 'TypeError'],
      ['a BigInt', 1n, 'TypeError'],
      ['NaN', Number.NaN, 'RangeError'],
      ['0.5', 0.5, 'RangeError'],
      ['2^53', 2 ** 53, 'RangeError'],
      ['-(2^53)', -(2 ** 53), 'RangeError'],
      ['Infinity', Infinity, 'RangeError'],
    ];

    it.each(badWords)('word that is %s: %s from every word method', (_name, word, kind) => {
      const f = open(64);
      const m = f as unknown as Record<string, Any>;
      for (const [name, args] of [
        ['load', [word]],
        ['store', [word, 1]],
        ['compareExchange', [word, 0, 1]],
        ['fetchAdd', [word, 1]],
        ['loadMany', [word, new Float64Array(1)]],
      ] as const) {
        expect({ name, kind: thrown(() => m[name]!.call(f, ...args)).kind }).toEqual({ name, kind });
      }
      expect(f.load(7)).toBe(0);
    });

    it.each(badValues)('value that is %s: %s from store, compareExchange and fetchAdd', (_name, value, kind) => {
      const f = open(64);
      const m = f as unknown as Record<string, Any>;
      for (const [name, args] of [
        ['store', [0, value]],
        ['compareExchange expected', [0, value, 1]],
        ['compareExchange value', [0, 0, value]],
        ['fetchAdd', [0, value]],
      ] as const) {
        const method = name.split(' ')[0]!;
        expect({ name, kind: thrown(() => m[method]!.call(f, ...args)).kind }).toEqual({ name, kind });
      }
      expect(f.load(0)).toBe(0);
    });

    it.each([
      ['a Uint8Array', new Uint8Array(8)],
      ['a BigInt64Array', new BigInt64Array(1)],
      ['a Float32Array', new Float32Array(2)],
      ['an Array', [0]],
      ['undefined', undefined],
      ['a DataView', new DataView(new ArrayBuffer(8))],
    ])('loadMany out that is %s: TypeError', (_name, out) => {
      const f = open(64);
      expect(thrown(() => (f.loadMany as Any)(0, out)).kind).toBe('TypeError');
    });

    it('a method called on something other than a SharedFile throws, and does not crash', () => {
      const S = Shared();
      const f = open(8);
      for (const receiver of [{}, null, undefined, 1, Object.create(S.prototype), new Map()]) {
        for (const name of ['load', 'store', 'compareExchange', 'fetchAdd', 'loadMany', 'tryLock', 'unlock', 'view', 'close'] as const) {
          const method = S.prototype[name] as Any;
          expect(() => method.call(receiver, 0, 0, 0)).toThrow();
        }
      }
      expect(f.load(0)).toBe(0);
    });
  });
});
