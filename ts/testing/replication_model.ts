// The workload of the replication fault tests (ts/hard/replication.child.ts):
// commit `txn` is a function of its number alone, so the state any prefix of
// the history must have is known without asking either database.

/** Commit `txn` of the model workload: a few puts and a delete over 97 keys, from the txn number alone. */
export function modelCommit(txn: number): { put: [string, string][]; del: string[] } {
  const put: [string, string][] = [[`k${txn % 97}`, `v${txn}`]];
  if (txn % 3 === 0) put.push([`m${(txn * 7) % 31}`, `w${txn}`.repeat(1 + (txn % 5))]);
  const del = txn % 13 === 0 ? [`k${(txn * 5) % 97}`] : [];
  return { put, del };
}

/** The model's state after txns 1..upTo. */
export function modelState(upTo: number): Map<string, string> {
  const m = new Map<string, string>();
  for (let t = 1; t <= upTo; t++) {
    const c = modelCommit(t);
    for (const [k, v] of c.put) m.set(k, v);
    for (const k of c.del) m.delete(k);
  }
  return m;
}

