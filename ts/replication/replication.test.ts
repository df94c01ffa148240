// Replication through NATS JetStream (spec/replication_v0.md), against a real
// 3-node nats-server cluster started here on loopback ports (issue #18 §3-§4):
// replicas converge to the primary's state hash and time travel; quorum
// commits resolve only once the stream has them; a promoted replica deposes
// the old primary (NotPrimary, never two primaries); a primary SIGKILLed
// under quorum load loses no acknowledged commit; a replica SIGKILLed at
// random points resumes without a gap or a duplicate; a NATS node killed and
// restarted does not stop writes; with the cluster unreachable, readers go
// on and quorum writes fail with ReplicationUnavailable, then publish when it
// is back. The longer torture is `npm run hardening`.

import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Database } from '../index.js';
import { compiledEngine } from '../hard/compiled.js';
import { natsAvailable, startNatsCluster, type NatsCluster } from '../testing/nats.js';
import { databaseHash, modelHash, until } from '../testing/replication_model.js';
import { runReplicaKill } from '../hard/replkill.js';
import { engineOfDatabase } from '../db/internal.js';
import { openReplica, startReplication, type Replication, type ReplicationOptions } from './index.js';
import { listSnapshots, snapshotBucket } from './snapshot.js';
import { openStream, PART_HEADER, STATE_HASH_HEADER, TXN_HEADER } from './stream.js';

// Without nats-server the suite is skipped, except in CI (.ci/run installs it), where that is a failure.
const available = natsAvailable();
if (!available && process.env.CI) throw new Error('nats-server is not installed: .ci/run installs it (apt-get install nats-server)');

let cluster: NatsCluster;
let dir: string;
let engine: string;
let streams = 0;
const nextStream = (): string => `s${process.pid}_${++streams}`;

/** A new stream, a primary database publishing to it with `options`, and where its replica goes. */
async function primaryOn(options: Partial<ReplicationOptions> = {}): Promise<{ stream: string; db: Database; repl: Replication; replicaPath: string }> {
  const stream = nextStream();
  const db = open(nodePath.join(dir, `${stream}.p.ndb`));
  const repl = await startReplication(db, { servers: cluster.servers, stream, ...options });
  return { stream, db, repl, replicaPath: nodePath.join(dir, `${stream}.r.ndb`) };
}

/** A child process of ts/hard/replication.child.ts, its stdout lines collected. */
function child(args: string[]): { proc: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [nodePath.join(engine, 'hard', 'replication.child.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, lines, exited };
}

describe.skipIf(!available)('replication through NATS JetStream', () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-repl-'));
    engine = compiledEngine(dir);
    cluster = await startNatsCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a replica applies every commit: same txn ids, state hash and time travel as the primary, and refuses writes', async () => {
    const { db, repl, stream, replicaPath } = await primaryOn();
    for (let t = 1; t <= 120; t++) {
      await db.write((w) => {
        w.put(`k${t % 17}`, `v${t}`);
        if (t % 5 === 0) w.del(`k${(t * 3) % 17}`);
      });
    }
    const replica = await openReplica(replicaPath, { servers: cluster.servers, stream });
    await until('the replica to catch up', () => replica.txnId === 120);
    expect(databaseHash(replica.db)).toBe(databaseHash(db));
    for (const t of [110, 115, 119]) expect(databaseHash(replica.db, t), `time travel to ${t}`).toBe(databaseHash(db, t));
    // It keeps following.
    await db.write((w) => w.put('late', 'yes'));
    await until('the late commit', () => replica.txnId === 121);
    expect(Buffer.from(replica.beginRead().get('late')!).toString()).toBe('yes');
    expect(replica.lag()).toEqual({ txns: 0, ms: 0 });
    expect(() => replica.db.beginWrite()).toThrow(expect.objectContaining({ code: 'NotPrimary' }));
    await repl.flushed(121);
    expect(repl.stats()).toMatchObject({ state: 'running', publishedTxn: 121, pending: 0, lastError: null });
    await replica.close();
    await repl.close();
    db.close();
  }, 60_000);

  it('quorum: commitAsync resolves only once the stream holds the commit', async () => {
    const { db, repl } = await primaryOn({ mode: 'quorum' });
    const acked: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        db.write((w) => w.put(`k${i}`, `v${i}`)).then(() => {
          acked.push(repl.stats().publishedTxn);
        }),
      ),
    );
    // Each resolution saw the stream at (at least) the commits resolved so far.
    expect(acked.length).toBe(40);
    for (let i = 0; i < acked.length; i++) expect(acked[i]!).toBeGreaterThanOrEqual(i + 1);
    await repl.close();
    db.close();
  }, 60_000);

  it('a promoted replica deposes the old primary: its writes fail with NotPrimary, and the stream has one history', async () => {
    const { db, repl: old, stream, replicaPath } = await primaryOn({ mode: 'quorum' });
    for (let t = 1; t <= 30; t++) await db.write((w) => w.put(`k${t}`, `v${t}`));
    const replica = await openReplica(replicaPath, { servers: cluster.servers, stream });
    const promoted = await replica.promote();
    expect(replica.txnId).toBe(30);
    await replica.db.write((w) => w.put('from', 'new primary'));
    await expect(db.write((w) => w.put('from', 'old primary'))).rejects.toMatchObject({ code: 'NotPrimary' });
    expect(() => db.beginWrite()).toThrow(expect.objectContaining({ code: 'NotPrimary' }));
    expect(old.stats().state).toBe('deposed');
    // A third database following the stream sees the new primary's history only.
    const third = await openReplica(nodePath.join(dir, `${stream}.t.ndb`), { servers: cluster.servers, stream });
    await until('the third replica', () => third.txnId === 31);
    expect(Buffer.from(third.beginRead().get('from')!).toString()).toBe('new primary');
    expect(databaseHash(third.db)).toBe(databaseHash(replica.db));
    // The old primary cannot start publishing again: the stream has moved on without it.
    await old.close();
    await expect(startReplication(db, { servers: cluster.servers, stream })).rejects.toMatchObject({ code: 'NotPrimary' });
    await third.close();
    await promoted.close();
    await replica.close();
    replica.db.close();
    db.close();
  }, 60_000);

  it.each(['quorum', 'async'] as const)('a primary SIGKILLed under %s load: the promoted replica has the model state (every acknowledged commit, in quorum mode)', async (mode) => {
    const stream = nextStream();
    const primaryPath = nodePath.join(dir, `${stream}.p.ndb`);
    const p = child(['primary', primaryPath, cluster.servers.join(','), stream, mode]);
    const replica = await (async () => {
      await until('the primary to start', () => p.lines.includes('ready'), 30_000);
      return openReplica(nodePath.join(dir, `${stream}.r.ndb`), { servers: cluster.servers, stream });
    })();
    await until('some acknowledged commits', () => p.lines.filter((l) => l.startsWith('acked')).length >= 150, 30_000);
    p.proc.kill('SIGKILL');
    await p.exited;
    const acked = Math.max(...p.lines.filter((l) => l.startsWith('acked')).map((l) => Number(l.split(' ')[1])));
    const promoted = await replica.promote();
    // async: the loss window, measured (commits acknowledged to the writer that the stream never got).
    if (mode === 'async') console.log(`async failover: ${acked} commits acknowledged, the replica has ${replica.txnId}: ${Math.max(0, acked - replica.txnId)} lost`);
    else expect(replica.txnId).toBeGreaterThanOrEqual(acked);
    expect(databaseHash(replica.db)).toBe(modelHash(replica.txnId));
    await replica.db.write((w) => w.put('after', 'failover'));
    // The old primary comes back: it cannot publish, and its writes fail.
    const back = open(primaryPath);
    await expect(startReplication(back, { servers: cluster.servers, stream })).rejects.toMatchObject({ code: 'NotPrimary' });
    back.close();
    await promoted.close();
    await replica.close();
    replica.db.close();
  }, 120_000);

  it('a replica SIGKILLed at random points resumes after its last durable commit: no gap, no duplicate, the primary and model hash (short replkill)', async () => {
    const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
    console.log(`ts/replication/replication.test.ts: replkill NORTHSTAR_SEED=${seed}`);
    const lines: string[] = [];
    const f = await runReplicaKill({ long: false, seed, log: (l) => lines.push(l) });
    expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
    expect(f).toMatchObject({ kills: 8, failures: 0, resumedBehind: 0, gaps: 0, childErrors: 0, hashMismatch: 0, verifyProblems: 0 });
    expect(f.commits).toBeGreaterThan(0);
  }, 180_000);

  it('one NATS node killed and restarted under quorum load: writes continue', async () => {
    const { db, repl } = await primaryOn({ mode: 'quorum' });
    let done = 0;
    const writing = (async () => {
      for (let i = 0; i < 300; i++) {
        await db.write((w) => w.put(`k${i % 40}`, `v${i}`));
        done++;
      }
    })();
    await until('writes under way', () => done >= 50);
    const node = cluster.nodes[2]!;
    await node.kill();
    const before = done;
    await until('writes with a node down', () => done >= before + 50, 30_000);
    await node.restart();
    await writing;
    expect(done).toBe(300);
    expect(repl.stats()).toMatchObject({ state: 'running', publishedTxn: 300 });
    await repl.close();
    db.close();
  }, 120_000);

  it('northstar replicate and northstar replica: the publisher follows commits another process makes; SIGTERM stops both cleanly', async () => {
    const stream = nextStream();
    const primaryPath = nodePath.join(dir, `${stream}.p.ndb`);
    const replicaPath = nodePath.join(dir, `${stream}.r.ndb`);
    const cli = (args: string[]): { proc: ChildProcess; lines: string[]; exited: Promise<number | null> } => {
      const proc = spawn(process.execPath, [nodePath.join(engine, 'cli', 'main.js'), ...args, '--servers', cluster.servers.join(','), '--stream', stream, '--json', '--every-ms', '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const lines: string[] = [];
      createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
      return { proc, lines, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
    };
    const db = open(primaryPath);
    await db.write((w) => w.put('first', '1'));
    const publisher = cli(['replicate', primaryPath, '--mode', 'async']);
    await until('the publisher', () => publisher.lines.length > 0, 30_000);
    // Commits of this process (not the publisher's): it follows them.
    for (let i = 0; i < 25; i++) await db.write((w) => w.put(`k${i}`, `v${i}`));
    const follower = cli(['replica', replicaPath]);
    const applied = (): number => Math.max(0, ...follower.lines.map((l) => (JSON.parse(l) as { appliedTxn?: number }).appliedTxn ?? 0));
    await until('the replica to apply txn 26', () => applied() === 26, 30_000);
    publisher.proc.kill('SIGTERM');
    follower.proc.kill('SIGTERM');
    expect(await publisher.exited).toBe(0);
    expect(await follower.exited).toBe(0);
    const r = open(replicaPath);
    expect(databaseHash(r)).toBe(databaseHash(db));
    r.close();
    db.close();
  }, 120_000);

  it('a new replica bootstraps from the newest snapshot while the primary keeps writing, replays only the tail, and converges; the stream is trimmed behind the oldest snapshot kept', async () => {
    const { db, repl, stream, replicaPath } = await primaryOn({ snapshotEveryTxns: 50, keepSnapshots: 2 });
    const write = (t: number): Promise<void> =>
      db.write((w) => {
        w.put(`k${t % 300}`, `v${t}`.repeat(1 + (t % 4)));
        if (t % 9 === 0) w.del(`k${(t * 7) % 300}`);
      });
    for (let t = 1; t <= 60; t++) await write(t);
    await until('the snapshot at txn 50', () => repl.stats().snapshots >= 1, 30_000);
    await new Promise((r) => setTimeout(r, 300)); // a trim would come right after it
    {
      // One snapshot of the two kept: nothing is trimmed yet, a replica behind it can still catch up.
      const s = await openStream({ servers: cluster.servers, stream });
      expect((await s.jsm.streams.info(stream)).state.first_seq).toBe(1);
      await s.nc.close();
    }
    for (let t = 61; t <= 230; t++) await write(t);
    await until('the snapshot at txn 200', () => repl.stats().snapshots >= 2 && repl.stats().lastSnapshotTxn === 200, 30_000);
    await new Promise((r) => setTimeout(r, 300)); // the prune and trim after it
    // Two snapshots kept, the newest at 200; the stream starts at the oldest kept one's message.
    const s = await openStream({ servers: cluster.servers, stream });
    const kept = await listSnapshots((await snapshotBucket(s, null))!);
    expect(kept.map((k) => k.txn)).toHaveLength(2);
    expect(kept[1]!.txn).toBe(200);
    expect((await s.jsm.streams.info(stream)).state.first_seq).toBe(kept[0]!.seq);
    await s.nc.close();
    // The primary keeps writing while the replica bootstraps.
    let t = 230;
    let stop = false;
    const writing = (async () => {
      // At most one more snapshot (at 250) meanwhile: the stream then still holds what follows either snapshot the replica may load.
      while (!stop && t < 270) await write(++t);
    })();
    const replica = await openReplica(replicaPath, { servers: cluster.servers, stream });
    expect(() => replica.beginRead({ txnId: 100 })).toThrow(expect.objectContaining({ code: 'SnapshotNotFound' })); // history starts at the snapshot
    stop = true;
    await writing;
    await until('the replica to converge', () => replica.txnId === db.txnId);
    expect(databaseHash(replica.db)).toBe(databaseHash(db));
    expect(databaseHash(replica.db, 200)).toBe(databaseHash(db, 200));
    await replica.close();
    await repl.close();
    db.close();
  }, 120_000);

  it('state-hash checkpoints: a replica verifies each against the primary, and one that differs stops it with the reason', async () => {
    const { db, repl, stream, replicaPath } = await primaryOn({ hashEveryTxns: 10 });
    const replica = await openReplica(replicaPath, { servers: cluster.servers, stream });
    const write = async (t: number): Promise<void> => {
      await db.write((w) => w.put(`k${t % 7}`, `v${t}`));
      await new Promise((r) => setTimeout(r, 5)); // the checkpoint's hash rides on a later message
    };
    for (let t = 1; t <= 25; t++) await write(t);
    await until('two verified checkpoints', () => replica.stats().hashChecks >= 2);
    expect(replica.stats()).toMatchObject({ verifiedTxn: 20, lastError: null, state: 'following' });
    for (let t = 26; t <= 30; t++) await write(t);
    await repl.flushed(30);
    await until('the replica at txn 30', () => replica.txnId === 30);
    // The primary's hash of checkpoint 30 has not been published (it needs a later message): publish txn 31 by
    // hand, as the primary would, but carrying a wrong hash for 30.
    await repl.close();
    await db.write((w) => w.put('k31', 'v31'));
    const e = engineOfDatabase(db);
    let record: Uint8Array | null = null;
    const it = e.log.scan(e.log.base);
    for (let r = it.next(); !r.done; r = it.next()) if (r.value.txnId === 31) record = r.value.bytes.slice();
    const s = await openStream({ servers: cluster.servers, stream });
    const h = s.headers();
    h.set(TXN_HEADER, '31');
    h.set(STATE_HASH_HEADER, '30:0123456789abcdef');
    await s.js.publish(s.subject, record!, { msgID: '31.test', expect: { lastSequence: 30 }, headers: h });
    await s.nc.close();
    await until('the replica to stop', () => replica.stats().state === 'stopped');
    expect(replica.stats().lastError).toMatch(/state hash at txn 30 is [0-9a-f]{16} here, 0123456789abcdef on the primary/);
    // Reads go on (at txn 30, or 31 if its own hash of 30 came after the primary's).
    expect(replica.txnId).toBeGreaterThanOrEqual(30);
    expect(Buffer.from(replica.beginRead().get('k2')!).toString()).toBe('v30');
    await replica.close();
    db.close();
  }, 60_000);

  it("a commit larger than the servers' max_payload goes in parts; parts a dead publisher left unfinished are dropped and the commit published again whole", async () => {
    const first = await primaryOn({ mode: 'quorum' });
    const { db, stream } = first;
    let repl = first.repl;
    const replica = await openReplica(first.replicaPath, { servers: cluster.servers, stream });
    await db.write((w) => w.put('small', 'x'));
    const big = (fill: number): Buffer => Buffer.alloc(700 * 1024, fill);
    await db.write((w) => (w.put('a', big(1)), w.put('b', big(2)), w.put('c', big(3)))); // 2.1 MB: 3 parts at NATS's default 1 MB
    expect(repl.stats()).toMatchObject({ publishedTxn: 2, streamSeq: 4 });
    await until('the replica at txn 2', () => replica.txnId === 2);
    expect(databaseHash(replica.db)).toBe(databaseHash(db));
    // The publisher dies after part 1 of txn 3: only that part is in the stream.
    await repl.close();
    await db.write((w) => (w.put('d', big(4)), w.put('e', big(5))));
    const e = engineOfDatabase(db);
    let record: Uint8Array | null = null;
    const it = e.log.scan(e.log.base);
    for (let r = it.next(); !r.done; r = it.next()) if (r.value.txnId === 3) record = r.value.bytes.slice();
    const s = await openStream({ servers: cluster.servers, stream });
    const h = s.headers();
    h.set(TXN_HEADER, '3');
    h.set(PART_HEADER, '1/2');
    await s.js.publish(s.subject, record!.subarray(0, 900 * 1024), { msgID: '3.dead.1', expect: { lastSequence: 4 }, headers: h });
    await s.nc.close();
    // Restarted, the primary publishes txn 3 whole after the orphan part; the replica drops the orphan and applies it.
    repl = await startReplication(db, { servers: cluster.servers, stream, mode: 'quorum' });
    await repl.flushed(3);
    await db.write((w) => w.put('after', 'y'));
    await until('the replica at txn 4', () => replica.txnId === 4);
    expect(replica.stats().lastError).toBeNull();
    expect(databaseHash(replica.db)).toBe(databaseHash(db));
    await replica.close();
    await repl.close();
    db.close();
  }, 60_000);

  it('with the cluster unreachable, readers go on and quorum commits fail with ReplicationUnavailable; they publish once it is back', async () => {
    const { db, repl } = await primaryOn({ mode: 'quorum', quorumTimeoutMs: 1_500 });
    await db.write((w) => w.put('a', '1'));
    for (const n of cluster.nodes) n.pause();
    try {
      const t0 = Date.now();
      await expect(db.write((w) => w.put('b', '2'))).rejects.toMatchObject({ code: 'ReplicationUnavailable' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
      // The commit stands locally, and readers are not blocked.
      const r = db.beginRead();
      expect(Buffer.from(r.get('b')!).toString()).toBe('2');
      r.close();
      expect(repl.stats().pending).toBe(1);
    } finally {
      for (const n of cluster.nodes) n.resume();
    }
    await repl.flushed(2);
    expect(repl.stats()).toMatchObject({ state: 'running', publishedTxn: 2, pending: 0 });
    await db.write((w) => w.put('c', '3'));
    await repl.close();
    db.close();
  }, 120_000);
});
