// `northstar queue` (ts/cli/queue.ts) in process: every verb, its JSON form,
// and the exit codes (0 fine, 1 nothing to do / problems / no such task, 2 bad
// command line).

import { describe, expect, it } from 'vitest';
import { openQueue } from '../index.js';
import { useTempDbs } from '../testing/fixtures.js';
import { QueueKeys } from '../queue/keys.js';
import { runCli } from './program.js';

const tmp = useTempDbs('northstar-cli-queue-');

function cli(...args: string[]): { code: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** A closed database whose queue 'work' holds: 1 done, 2 claimed, 3 dead, 4 pending (bytes payload). */
async function fixture(): Promise<string> {
  const db = tmp.openDb();
  const q = openQueue(db, 'work');
  await q.enqueue([{ type: 'build', payload: { repo: 'x' } }, { type: 'build' }, { type: 'test', maxAttempts: 1 }]);
  const [a, b, c] = await q.claim({ worker: 'agent-1', max: 3 });
  await q.complete(a!, { ok: true });
  await q.fail(c!, { error: 'boom' });
  await q.enqueue([{ type: 'test', payload: new Uint8Array([1, 2]) }]);
  expect(b!.id).toBe(2);
  await q.close();
  db.close();
  return tmp.dbPath();
}

describe('northstar queue', () => {
  it('stats, list, show: tables and JSON', async () => {
    const path = await fixture();
    const stats = cli('queue', path, 'stats');
    expect(stats.code).toBe(0);
    expect(stats.out.join('\n')).toMatch(/pending\s+1\n\s*claimed\s+1\n\s*done\s+1\n\s*dead\s+1/);
    expect(JSON.parse(cli('queue', path, 'stats', '--json').out[0]!)).toMatchObject({ queue: 'work', counts: { pending: 1, claimed: 1, done: 1, dead: 1, cancelled: 0 }, enqueued: 4, claims: 3, completions: 1 });
    const list = cli('queue', path, 'list', '--state', 'dead');
    expect(list.code).toBe(0);
    expect(list.out).toHaveLength(2);
    expect(list.out[1]).toMatch(/^3\s+dead\s+test/);
    expect(JSON.parse(cli('queue', path, 'list', '--type', 'build', '--json').out[0]!).map((t: { id: number }) => t.id)).toEqual([1, 2]);
    expect(JSON.parse(cli('queue', path, 'list', '--limit', '1', '--json').out[0]!)).toHaveLength(1);
    const show = cli('queue', path, 'show', '1');
    expect(show.out.join('\n')).toMatch(/state\s+done[\s\S]*result\s+\{"ok":true\}/);
    expect(JSON.parse(cli('queue', path, 'show', '4', '--json').out[0]!).payload).toEqual({ bytes: Buffer.from([1, 2]).toString('base64') });
    expect(cli('queue', path, 'show', '99').code).toBe(1);
    expect(cli('queue', path, 'stats', '--queue', 'other', '--json').out[0]).toContain('"pending":0');
  });

  it('requeue, cancel, purge change the queue; nothing to do exits 1', async () => {
    const path = await fixture();
    expect(cli('queue', path, 'requeue', '3').out[0]).toBe('task 3: dead -> pending');
    const again = cli('queue', path, 'requeue', '3');
    expect(again.code).toBe(1);
    expect(again.out[0]).toBe('task 3 is pending: nothing to requeue');
    expect(JSON.parse(cli('queue', path, 'cancel', '2', '--json').out[0]!)).toEqual({ id: 2, changed: true, state: 'cancelled' });
    expect(cli('queue', path, 'cancel', '1').code).toBe(1);
    expect(cli('queue', path, 'purge').out[0]).toBe('1 tasks purged');
    expect(JSON.parse(cli('queue', path, 'purge', '--states', 'cancelled', '--json').out[0]!)).toEqual({ purged: 1 });
    expect(cli('queue', path, 'verify').out.at(-1)).toBe('2 tasks, 0 problems found');
  });

  it('verify exits 1 on damage; bad verbs, ids and options are refused', async () => {
    const path = await fixture();
    expect(cli('queue', path, 'frobnicate').code).toBe(1);
    expect(cli('queue', path, 'show').err[0]).toMatch(/which task/);
    expect(cli('queue', path, 'show', 'x').code).toBe(1);
    expect(cli('queue', path, 'list', '--state', 'sleeping').code).toBe(1);
    expect(cli('queue', path, 'list', '--limit', '0').code).toBe(2);
    expect(cli('queue', path, 'purge', '--states', 'pending').code).toBe(1);
    expect(cli('queue', tmp.dbPath('missing'), 'stats').code).toBe(1);
    const db = tmp.openDb();
    const w = db.beginWrite();
    w.del(new QueueKeys('work').lease(0, 0));
    w.put(new QueueKeys('work').lease(5, 4), new Uint8Array(0));
    w.commit();
    db.close();
    const v = cli('queue', path, 'verify');
    expect(v.code).toBe(1);
    expect(v.out.at(-1)).toBe('4 tasks, 1 problems found');
  });
});
