// micro/pager: the page layer under the B-tree. Pages are 16 KiB; reads go
// through the Pager (pread + pageVerify + cache), writes through its
// writePages; database-level figures (open, commit) through ts/db/.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from '../../db/index.js';
import { HEADER_SIZE, PageType } from '../../format/constants.js';
import { initPageHeader } from '../../format/page.js';
import { NodeFile } from '../../io/file.js';
import { Pager } from '../../pager/pager.js';
import { mappingFor } from '../../pager/map.js';
import type { Kernels } from '../../native/kernels.js';
import { type Benchmark, type BenchCase, type BenchContext, type IoCounters, type Profile } from '../registry.js';
import { dbConfig, dbIo, key16, openCloseOp, randomIndexes, removeDatabase, valueOf } from './fixtures.js';

const PAGE = 16384;

/** Pages in the file of the page-read benchmarks: 32 MiB at ci, 256 MiB at dev_nvme. */
const filePages = (p: Profile): number => (p.records >= 1_000_000 ? 16384 : 2048);

/** A sealed 16 KiB page with id `id` (an overflow page: any content verifies). */
function sealedPage(id: number, k: Kernels): Uint8Array {
  const page = new Uint8Array(PAGE);
  initPageHeader(page, PageType.Overflow, id, PAGE - HEADER_SIZE);
  for (let i = HEADER_SIZE; i < PAGE; i += 64) page[i] = (id + i) & 0xff;
  k.pageSeal(page);
  return page;
}

/** A file of `n` sealed pages (written once per benchmark, outside any timing). */
function pageFile(file: string, n: number, k: Kernels): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let id = 0; id < n; id++) fs.writeSync(fd, sealedPage(id, k), 0, PAGE, id * PAGE);
  } finally {
    fs.closeSync(fd);
  }
}

function fileIo(f: NodeFile, opens: number, closes: number): IoCounters {
  return { ...f.stats, opens, closes };
}

function readPageCase(ctx: BenchContext, hot: boolean, mapped = false): BenchCase {
  const n = filePages(ctx.profile);
  const file = path.join(ctx.dir, 'pages.bin');
  pageFile(file, n, ctx.kernels);
  const f = new NodeFile(file, fs.openSync(file, 'r+'));
  // Hot: the cache holds every page (and the warm-up loads them). Cold: the
  // cache's 16-page floor, so nearly every read is a pread + verify.
  // Mapped: pages are views of a read-only mapping of the file where a database handle
  // would map (native on Linux and macOS: spec/file_format_v1.md §9.3), else pread.
  const mapping = mapped ? mappingFor(f) : null;
  const pager = new Pager(f, PAGE, ctx.kernels, hot ? (n + 16) * PAGE : 0, mapping);
  const ids = randomIndexes(1 << 16, n, ctx.seed);
  let sink = 0;
  return {
    ops: (hot ? 200_000 : 20_000) * ctx.profile.opsScale,
    batch: hot ? 50 : 1,
    warmupOps: hot ? n * 4 : 2000,
    warmup(ops) {
      if (hot) for (let id = 0; id < n; id++) sink += pager.read(id)[0]!;
      for (let i = 0; i < ops; i++) sink += pager.read(ids[(i * 7) & 0xffff]!)[0]!;
    },
    op(i) {
      sink += pager.read(ids[i & 0xffff]!)[0]!;
    },
    io: () => fileIo(f, 0, 0),
    notes: hot
      ? [`${n} pages, all cached; reads hit the page cache`]
      : [
          `${n} pages; cold = the database's page cache at its 16-page floor, so reads are ${
            !mapped
              ? 'pread + pageVerify'
              : mapping === null
                ? 'pread + pageVerify (no mapping for this implementation or platform, as read_page_random_16k_cold)'
                : 'pageVerify of a view of the mapped file, no pread'
          }.`,
          'The OS page cache is not dropped (that needs root and hits the whole machine): reads come from OS memory, not the device.',
        ],
    teardown: () => {
      pager.map?.close();
      f.close();
    },
  };
}

function writePageCase(ctx: BenchContext): BenchCase {
  const file = path.join(ctx.dir, 'write.bin');
  const f = new NodeFile(file, fs.openSync(file, 'w+'));
  const pager = new Pager(f, PAGE, ctx.kernels, 0);
  const page = sealedPage(0, ctx.kernels);
  const ids = [0];
  const pages = [page];
  let next = 0;
  const write = (): void => {
    // A new page: its id, a fresh seal, one pwrite at the end of the file, no sync.
    initPageHeader(page, PageType.Overflow, next, PAGE - HEADER_SIZE);
    ctx.kernels.pageSeal(page);
    ids[0] = next++;
    pager.writePages(ids, pages);
  };
  return {
    ops: 2000 * ctx.profile.opsScale,
    warmupOps: 200,
    beforeRepeat() {
      f.truncate(0);
      next = 0;
    },
    warmup(ops) {
      for (let i = 0; i < ops; i++) write();
      f.truncate(0);
      next = 0;
    },
    op: write,
    io: () => fileIo(f, 0, 0),
    notes: ['each op: set the page id, pageSeal, one pwrite appending to the file; no fsync'],
    teardown: () => f.close(),
  };
}

export function pagerBenchmarks(): Benchmark[] {
  const g = { suite: 'micro', group: 'pager' } as const;
  return [
    {
      ...g,
      name: 'open_close_empty',
      critical: false,
      kind: 'db',
      params: () => ({ page_size: PAGE, sync: 'full' }),
      setup(ctx) {
        const file = path.join(ctx.dir, 'empty.ndb');
        removeDatabase(file);
        const first = open(file, { pageSize: PAGE });
        const cfg = dbConfig(first);
        first.close();
        return {
          ops: 300 * ctx.profile.opsScale,
          db: cfg,
          warmupOps: 20,
          ...openCloseOp(() => open(file, { pageSize: PAGE })),
          notes: ['I/O counts cover open (read at open); a handle\'s counters end before its close, so close-time I/O is not counted', 'open/close count 2 files per handle (data file and log)'],
        };
      },
    },
    {
      ...g,
      name: 'read_page_random_16k_hot',
      critical: true,
      kind: 'db',
      params: (p) => ({ page_size: PAGE, pages: filePages(p), cache: 'all pages' }),
      setup: (ctx) => readPageCase(ctx, true),
    },
    {
      ...g,
      name: 'read_page_random_16k_cold',
      critical: false,
      kind: 'db',
      params: (p) => ({ page_size: PAGE, pages: filePages(p), cache: '16 pages', os_cache: 'not dropped' }),
      setup: (ctx) => readPageCase(ctx, false),
    },
    {
      ...g,
      name: 'read_page_random_16k_cold_mapped',
      critical: false,
      kind: 'db',
      params: (p) => ({ page_size: PAGE, pages: filePages(p), cache: '16 pages', os_cache: 'not dropped', read: 'mapped view where the handle maps (native, Unix), else pread' }),
      setup: (ctx) => readPageCase(ctx, false, true),
    },
    {
      ...g,
      name: 'write_new_page_16k_no_sync',
      critical: true,
      kind: 'db',
      params: () => ({ page_size: PAGE, sync: false }),
      setup: writePageCase,
    },
    {
      ...g,
      name: 'commit_meta_fsync',
      critical: true,
      kind: 'db',
      params: () => ({ page_size: PAGE, sync: 'full', puts_per_commit: 1, assert: 'syncs == commits' }),
      setup(ctx) {
        const file = path.join(ctx.dir, 'commit.ndb');
        removeDatabase(file);
        // No automatic checkpoints inside the measurement: each commit is then
        // exactly one durable log append (spec §8); the meta is written at checkpoints.
        const db = open(file, { pageSize: PAGE, sync: 'full', history: { txns: 0 }, checkpoint: { commits: 1e9, logBytes: 1e12 } });
        const value = valueOf(128);
        let n = 0;
        let syncsBefore = 0;
        let commits = 0;
        const done = { commits: 0, committedBytes: 0 };
        const syncs = (): number => {
          const x = dbIo(db);
          return x.fsyncs + x.fdatasyncs;
        };
        return {
          ops: 300 * ctx.profile.opsScale,
          db: dbConfig(db),
          warmupOps: 20,
          beforeRepeat() {
            db.checkpoint();
          },
          op() {
            if (commits === 0) syncsBefore = syncs();
            const w = db.beginWrite();
            w.put(key16(n++ % 10_000), value);
            w.commit();
            commits++;
            done.commits++;
            done.committedBytes += 16 + value.length;
          },
          afterRepeat() {
            const got = syncs() - syncsBefore;
            const want = commits;
            commits = 0;
            if (got !== want) throw new Error(`commit_meta_fsync: ${got} syncs for ${want} durable commits (expected one each)`);
          },
          io: () => dbIo(db),
          commits: () => done,
          notes: ['log-first commits: the durability point of a commit is one fdatasync of its log record; the meta page is written at checkpoints (spec §8). Checked: syncs == commits'],
          teardown: () => db.close(),
        };
      },
    },
    {
      ...g,
      name: 'checksum_verify_16k',
      critical: true,
      kind: 'db',
      params: () => ({ page_size: PAGE, kernel: 'pageVerify' }),
      setup(ctx) {
        const page = sealedPage(77, ctx.kernels);
        let s = 0;
        return {
          ops: 50_000 * ctx.profile.opsScale,
          batch: 50,
          warmupOps: 5000,
          op() {
            s += ctx.kernels.pageVerify(page, 77);
          },
          afterRepeat() {
            if (s !== 0) throw new Error('sealed page did not verify');
          },
          notes: ["the process's kernels (NORTHSTAR_NATIVE): the database's own verify path"],
        };
      },
    },
  ];
}
