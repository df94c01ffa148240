// NorthstarDB quickstart: open, write, read, scan, reopen.
// Run after `npm install`:  node examples/quickstart.mjs
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open, implementation, NorthstarError } from '../dist/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-quickstart-'));
const file = path.join(dir, 'app.ndb');

let db = open(file, { pageSize: 16384, sync: 'full' }); // creates the file
console.log(`kernels: ${implementation}`);

// One writer at a time; commit() is durable when it returns.
const w = db.beginWrite();
w.put('user:1', JSON.stringify({ name: 'Ada' }));
w.put('user:2', JSON.stringify({ name: 'Grace' }));
w.put('task:1', 'write the spec');
const txnId = w.commit();
console.log(`committed txn ${txnId}`);

// Readers see a fixed snapshot, however many commits follow.
const r = db.beginRead();
console.log('user:1 =', r.get('user:1')?.toString());
for (const [key, value] of r.scan({ prefix: 'user:' })) {
  console.log(`  ${key} -> ${value}`);
}
r.close();

// A second writer while one is live is refused with a stable code.
const w2 = db.beginWrite();
try {
  db.beginWrite();
} catch (err) {
  if (err instanceof NorthstarError) console.log(`second writer: ${err.code}`);
}
w2.del('task:1');
w2.commit();

db.close();

// Reopen: the data is on disk.
db = open(file);
const again = db.beginRead();
console.log(`reopened at txn ${db.txnId}: user:2 =`, again.get('user:2')?.toString(), '| task:1 =', again.get('task:1'));
again.close();
console.log('verify:', db.verify().ok ? 'clean' : db.verify().problems);
db.close();
fs.rmSync(dir, { recursive: true, force: true });
