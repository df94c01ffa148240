// A cartridge writer killed with SIGKILL at random moments (spec/cartridge_v1.md
// §5): after every kill the file is the old cartridge or the new one, whole and
// valid, never a mix; the temporary files of dead writers go at the next write.
// The writer is a child process running the compiled writeCartridgeFile
// (dist/, which npm test's build makes) on two prepared cartridges of ~5 MB, in
// a loop, so that kills land inside the write, the fsync and the rename.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { useTempDir } from '../testing/fixtures.js';
import { encodeCartridge, type CartridgeGroup } from './format.js';
import { readCartridgeFile, writeCartridgeFile } from './file.js';

const t = useTempDir('northstar-cartridge-crash-');
const ROOT = nodePath.join(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..');
const COMPILED = nodePath.join(ROOT, 'dist', 'cartridge', 'file.js');
const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/cartridge/crash.test.ts: NORTHSTAR_SEED=${seed}`);

function cartridge(txnId: number, n: number): Uint8Array {
  const group: CartridgeGroup = { queue: Buffer.from('work'), type: Buffer.from('build'), entries: [] };
  for (let i = 0; i < n; i++) group.entries.push({ rank: 100, readyAt: 1000 + i, id: i + 1 + txnId });
  return encodeCartridge({ dbId: 9, txnId, logEnd: 1000 * txnId, groups: [group] });
}

it.runIf(fs.existsSync(COMPILED) && process.platform !== 'win32')('a writer killed at random moments leaves the old cartridge or the new one, whole', async () => {
  let rand = seed;
  const next = (): number => ((rand = (Math.imul(rand, 1103515245) + 12345) >>> 0), rand / 2 ** 32);
  const a = cartridge(1, 200_000);
  const b = cartridge(2, 210_000);
  fs.writeFileSync(nodePath.join(t.dir, 'a.bin'), a);
  fs.writeFileSync(nodePath.join(t.dir, 'b.bin'), b);
  const out = nodePath.join(t.dir, 'c.cartridge');
  writeCartridgeFile(out, a);
  const script = `
    import * as fs from 'node:fs';
    const { writeCartridgeFile } = await import(${JSON.stringify(COMPILED)});
    const both = [fs.readFileSync(${JSON.stringify(nodePath.join(t.dir, 'a.bin'))}), fs.readFileSync(${JSON.stringify(nodePath.join(t.dir, 'b.bin'))})];
    process.stdout.write('ready\\n');
    for (let i = 0; ; i++) writeCartridgeFile(${JSON.stringify(out)}, both[i % 2]);
  `;
  let kills = 0;
  for (let cycle = 0; cycle < 12; cycle++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`writer exited with ${code} before it was ready`)));
    });
    await new Promise((r) => setTimeout(r, 5 + Math.floor(next() * 60)));
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    kills++;
    const c = readCartridgeFile(out); // throws if torn or mixed
    expect([1, 2]).toContain(c.header.txnId);
    expect(c.header.entryCount).toBe(c.header.txnId === 1 ? 200_000 : 210_000);
  }
  expect(kills).toBe(12);
  // The next write in this process clears the temporaries of the dead writers.
  writeCartridgeFile(out, b);
  expect(fs.readdirSync(t.dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
}, 60_000);
