// The workload of `macro/cartridge/claims_with_cartridge` (issue #16 §4):
// claims per second with and without a cartridge, on one database of `tasks`
// ready tasks over `types` types. Rounds alternate between a queue handle
// that claims from the tree (one seek per type, and per step, into the ready
// index) and one whose claims find their candidates through a served
// cartridge (openQueue's `cartridge` option: the cartridge brought up to the
// transaction's txn, each candidate re-checked by one get), so drift in the
// machine falls on both alike. Two shapes:
//
// - `any`: claim({ max: 1 }) of any type: the claim must find the best head
//   among every type's (64 seeks per transaction from the tree);
// - `typed`: claim({ types: [T], max: 1 }) of one type (one seek).
//
// `concurrency` claims are kept in flight (they share transactions, as
// workers do). The database runs with sync 'none': the figure is the claim
// path's CPU, which is what the cartridge changes; with 'full' both ways wait
// on the same fdatasyncs.
//
// Run as a script (the harness's child): `node cartridge_claims.js '<json CartridgeClaimsOptions>'`
// prints one JSON CartridgeClaimsResult line.

import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openCartridge } from '../cartridge/serve.js';
import { open } from '../db/index.js';
import { openQueue, type Queue } from '../queue/index.js';

export interface CartridgeClaimsOptions {
  file: string;
  tasks: number;
  types: number;
  /** Claims per round. */
  claims: number;
  rounds: number;
  concurrency: number;
}

export interface CartridgeClaimsResult {
  /** Claims/s of each round, per shape and way. */
  any: { tree: number[]; cartridge: number[] };
  typed: { tree: number[]; cartridge: number[] };
  /** Transactions whose claims found a cartridge view at their txn, of all claim transactions with the cartridge. */
  viewsUsed: number;
  viewsAsked: number;
}

const BATCH = 10_000;
const now = (): number => Number(process.hrtime.bigint());

export async function runCartridgeClaims(o: CartridgeClaimsOptions): Promise<CartridgeClaimsResult> {
  const db = open(o.file, { sync: 'none' });
  const typeName = (i: number): string => `type${String(i % o.types).padStart(3, '0')}`;
  const setup = openQueue(db, 'work');
  for (let i = 0; i < o.tasks; i += BATCH) {
    const w = db.beginWrite();
    setup.enqueueIn(w, Array.from({ length: Math.min(BATCH, o.tasks - i) }, (_, j) => ({ type: typeName(i + j), payload: { n: i + j }, priority: (i + j) % 10 })));
    w.commit();
  }
  await setup.close();
  const service = openCartridge(db); // default rebuild triggers, as a user would run it
  await service.rebuild();
  let viewsUsed = 0;
  let viewsAsked = 0;
  const counted = {
    viewAt(txnId: number) {
      viewsAsked++;
      const v = service.viewAt(txnId);
      if (v !== null) viewsUsed++;
      return v;
    },
  };
  const tree = openQueue(db, 'work');
  const withCartridge = openQueue(db, 'work', { cartridge: counted });

  const round = async (q: Queue, typed: boolean, r: number): Promise<number> => {
    let left = o.claims;
    const t0 = now();
    const loop = async (k: number): Promise<void> => {
      while (left > 0) {
        left--;
        const [t] = await q.claim({ worker: `w${k}`, types: typed ? [typeName(r * o.concurrency + k)] : undefined, leaseMs: 600_000 });
        if (t === undefined) throw new Error('the queue ran dry: raise tasks');
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, (_, k) => loop(k)));
    return o.claims / ((now() - t0) / 1e9);
  };

  const result: CartridgeClaimsResult = { any: { tree: [], cartridge: [] }, typed: { tree: [], cartridge: [] }, viewsUsed: 0, viewsAsked: 0 };
  for (let r = 0; r < o.rounds; r++) {
    for (const shape of ['any', 'typed'] as const) {
      // Alternate which way goes first, so that neither always meets the other's leftovers.
      const order = r % 2 === 0 ? (['tree', 'cartridge'] as const) : (['cartridge', 'tree'] as const);
      for (const way of order) result[shape][way].push(await round(way === 'tree' ? tree : withCartridge, shape === 'typed', r));
    }
  }
  result.viewsUsed = viewsUsed;
  result.viewsAsked = viewsAsked;
  await tree.close();
  await withCartridge.close();
  await service.close();
  db.close();
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  void runCartridgeClaims(JSON.parse(process.argv[2]!) as CartridgeClaimsOptions).then((r) => {
    fs.writeSync(1, `${JSON.stringify(r)}\n`);
    process.exit(0);
  });
}
