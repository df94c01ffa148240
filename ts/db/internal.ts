// The engine behind a public Database, for the CLI, the hardening suite and
// tests. Never re-exported by the package (ts/index.ts): users cannot reach
// engine state, and the published types do not reach the engine.

import type { Database } from './database.js';
import type { Engine } from './engine.js';

let access: ((db: Database) => Engine) | null = null;

/** Called once, by Database's static initializer, with the only reader of its private field. */
export function provideEngineAccess(fn: (db: Database) => Engine): void {
  access ??= fn;
}

export function engineOfDatabase(db: Database): Engine {
  if (access === null) throw new Error('engineOfDatabase: the Database class is not loaded');
  return access(db);
}
