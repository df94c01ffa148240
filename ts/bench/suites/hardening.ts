// hardening: crash, fault-injection and soak runs as timed benchmarks. The
// loops themselves run in `npm run hardening` (ts/hard/), which reports their
// figures as JSON; timing them here is not built, so these stay pending.

import type { Benchmark } from '../registry.js';

const PENDING = 'not built as a timed benchmark: the crash, fault-injection and soak loops run in npm run hardening (ts/hard/), whose --json report carries their figures';

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
