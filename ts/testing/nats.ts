// A real NATS JetStream cluster for tests and benchmarks (issue #18 §3):
// `nodes` nats-server processes (the Debian package `nats-server`) clustered
// on loopback ports, each with JetStream storing in its own directory under a
// temporary directory, started here and stopped by pid. Each node can be
// killed (SIGKILL), restarted on the same ports and storage, or paused and
// resumed (SIGSTOP/SIGCONT: the network to it "cut" without closing a socket).
// Nothing listens anywhere but 127.0.0.1.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as nodePath from 'node:path';

/** The nats-server binary, or null when it is not installed (Debian puts it in /usr/sbin). */
export function natsServerPath(): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    if (dir === '') continue;
    const p = nodePath.join(dir, 'nats-server');
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** A free TCP port on 127.0.0.1 (bound and released: another process could take it in between, rarely). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface NatsNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number | null;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and storage (after kill or stop). */
  restart(): Promise<void>;
  /** SIGSTOP: the node stops answering, its sockets stay open. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface NatsCluster {
  readonly nodes: NatsNode[];
  /** Client URLs of every node. */
  readonly servers: string[];
  readonly dir: string;
  /** Stops every node (SIGKILL after SIGTERM had 2 s) and removes the directory. */
  stop(): Promise<void>;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nats-server on port ${port} did not start in ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once('exit', () => resolve()));
}

/**
 * Starts a cluster of `nodes` (default 3) JetStream servers and resolves once
 * every node accepts connections. Throws when nats-server is not installed.
 */
export async function startNatsCluster(options: { nodes?: number; name?: string } = {}): Promise<NatsCluster> {
  const bin = natsServerPath();
  if (bin === null) throw new Error('nats-server is not installed (apt-get install nats-server)');
  const count = options.nodes ?? 3;
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-nats-'));
  const ports: { client: number; cluster: number }[] = [];
  for (let i = 0; i < count; i++) ports.push({ client: await freePort(), cluster: await freePort() });
  const routes = ports.map((p) => `nats://127.0.0.1:${p.cluster}`).join(',');
  const procs: (ChildProcess | null)[] = new Array(count).fill(null);

  const launch = (i: number): ChildProcess => {
    const store = nodePath.join(dir, `n${i}`);
    fs.mkdirSync(store, { recursive: true });
    const args = ['-a', '127.0.0.1', '-p', String(ports[i]!.client), '-n', `n${i}`, '--js', '--sd', store];
    if (count > 1) args.push('--cluster_name', options.name ?? 'northstar', '--cluster', `nats://127.0.0.1:${ports[i]!.cluster}`, '--routes', routes);
    const log = fs.openSync(nodePath.join(dir, `n${i}.log`), 'a');
    const p = spawn(bin, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    procs[i] = p;
    return p;
  };

  const nodes: NatsNode[] = ports.map((p, i) => ({
    name: `n${i}`,
    port: p.client,
    url: `nats://127.0.0.1:${p.client}`,
    get pid() {
      return procs[i]?.pid ?? null;
    },
    async kill() {
      const proc = procs[i];
      if (proc === null || proc === undefined) return;
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await exited(proc);
      procs[i] = null;
    },
    async restart() {
      if (procs[i] !== null) await this.kill();
      launch(i);
      await waitForPort(p.client, 10_000);
    },
    pause() {
      procs[i]?.kill('SIGSTOP');
    },
    resume() {
      procs[i]?.kill('SIGCONT');
    },
  }));

  try {
    for (let i = 0; i < count; i++) launch(i);
    for (const p of ports) await waitForPort(p.client, 10_000);
  } catch (err) {
    for (const p of procs) p?.kill('SIGKILL');
    throw err;
  }

  return {
    nodes,
    servers: nodes.map((n) => n.url),
    dir,
    async stop() {
      await Promise.all(
        procs.map(async (p) => {
          if (p === null) return;
          p.kill('SIGCONT');
          p.kill('SIGTERM');
          const t = setTimeout(() => p.kill('SIGKILL'), 2_000);
          await exited(p);
          clearTimeout(t);
        }),
      );
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether nats-server can be run here (a test skips with this reason otherwise). */
export function natsAvailable(): boolean {
  const bin = natsServerPath();
  return bin !== null && spawnSync(bin, ['--version'], { encoding: 'utf8' }).status === 0;
}
