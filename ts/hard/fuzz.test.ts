// The bounded fuzzing suite (ts/hard/fuzz.ts) on every `npm test`: a few
// thousand mutated pages, nodes, metas and records on each implementation
// present, differential when both are. Replay a failure with NORTHSTAR_SEED=<seed>.

import { expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { buildCorpus, runFuzz } from './fuzz.js';
import { open } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { writeU16 } from '../format/bytes.js';
import { NODE_COUNT_OFFSET, NODE_LINK_OFFSET, NODE_SLOTS_OFFSET, PageType, TYPE_OFFSET } from '../format/constants.js';
import { FaultyFileSystem } from '../io/faulty.js';
import { kernels } from '../native/kernels.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/hard/fuzz.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

it('mutated pages, nodes, metas and records: only documented errors, no write outside a buffer, implementations agree, no hang', async () => {
  const lines: string[] = [];
  const f = await runFuzz({ long: false, seed, log: (l) => lines.push(l), cases: 6000 });
  console.log(`fuzz: ${JSON.stringify(f)}`);
  expect(lines.filter((l) => l.startsWith('FAIL')), `seed ${seed}`).toEqual([]);
  expect(f.failures).toBe(0);
  expect(f.hangs).toBe(0);
  expect(f.fuzzCases).toBeGreaterThanOrEqual(5000);
  expect(f.nodeRangeErrors).toBeGreaterThan(0);
  expect(f.pageChangesDetected).toBeGreaterThan(0);
  expect(f.recordsAccepted).toBeGreaterThan(0);
  expect(f.metasAccepted).toBeGreaterThan(0);
  expect(f.implementations).toBe(implementation === 'native' ? 'fallback+native' : 'fallback');
}, 120_000);

// Found by the reader target of ts/hard/fuzz.ts: a tree node whose checksums
// are valid but whose layout is not (a crafted file, or a writer bug) used to
// reach the node kernels on the read path, whose RangeError escaped get() and
// scan(). The pager now checks a node's layout when it reads it from the file.
it('a resealed leaf whose cell count points past its slots makes get() throw Corrupt naming the page', () => {
  const corpus = buildCorpus(seed);
  const { file, log, path, pageSize, root, keys } = corpus.db;
  const image = file.slice();
  // The leaf a get of keys[0] reaches: descend from the root by branchSearch.
  let id = root;
  for (;;) {
    const p = image.subarray(id * pageSize, (id + 1) * pageSize);
    if (p[TYPE_OFFSET] === PageType.Leaf) break;
    const c = kernels.branchSearch(p, keys[0]!);
    const view = new DataView(p.buffer, p.byteOffset);
    id = c === 0 ? view.getUint32(NODE_LINK_OFFSET, true) : view.getUint32(view.getUint16(NODE_SLOTS_OFFSET + 2 * (c - 1), true), true);
  }
  const leaf = image.subarray(id * pageSize, (id + 1) * pageSize);
  writeU16(leaf, NODE_COUNT_OFFSET, 0xffff);
  kernels.pageSeal(leaf);
  const files = new FaultyFileSystem();
  files.setBytes(path, image);
  files.setBytes(`${path}.log`, log);
  const db = open(path, { fileSystem: files, sync: 'none' });
  try {
    let thrown: unknown;
    try {
      db.beginRead().get(keys[0]!);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NorthstarError);
    expect((thrown as NorthstarError).code).toBe('Corrupt');
  } finally {
    db.close();
  }
});
