// hardening: crash, fault-injection and soak runs. The hardening suite is a
// later issue; until it lands these are listed as pending and never run.

import type { Benchmark } from '../registry.js';

const PENDING = 'the hardening suite (crash loops, fault injection, soak) is a later issue';

export function hardeningBenchmarks(): Benchmark[] {
  const b = (name: string, params: Record<string, string | number>): Benchmark => ({
    suite: 'hardening',
    group: 'crash',
    name,
    critical: false,
    kind: 'db',
    params: () => params,
    pending: PENDING,
  });
  return [b('kill_during_commit_loop', { kills: 1000 }), b('io_error_injection_recovery', { faults: 'every I/O call' }), b('soak_mixed_24h', { hours: 24 })];
}
