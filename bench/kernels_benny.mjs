// A quick side-by-side of each kernel, native against its TypeScript twin,
// with benny: ops/s and margin per implementation on the console, and one
// chart per kernel (bench-results/kernels/<kernel>.chart.html, plus the
// figures as JSON beside it). For a look while working on a kernel; the
// figures on record, their baselines and the native-vs-fallback gate come from
// the harness (`northstar bench run --suite micro`, docs/benchmarks.md), which
// measures the same kernel benchmarks with the same fixtures.
//
//   npm run bench:kernels [-- NAME_SUBSTRING]
//
// Needs dist/ (npm run build) and the native addon; without the addon it says
// why and exits 1, since a side-by-side needs both sides.

import b from 'benny';
import { KERNEL_BENCHES, freshFactory, kernelFixtures } from '../dist/bench/suites/kernels.js';
import { RecordBuilder } from '../dist/log/record.js';
import { fallbackKernels, nativeKernels, nativeUnavailableReason } from '../dist/native/kernels.js';

if (nativeKernels === null) {
  console.error(`bench:kernels: no native kernels to compare (${nativeUnavailableReason})`);
  process.exit(1);
}
const filter = process.argv[2] ?? '';
const folder = 'bench-results/kernels';
const chosen = KERNEL_BENCHES.filter((kb) => kb.name.includes(filter));
if (chosen.length === 0) {
  console.error(`bench:kernels: no kernel benchmark name contains "${filter}"`);
  process.exit(1);
}

for (const kb of chosen) {
  // Each implementation gets its own fixtures and its own copy of the op's code (see the harness's freshFactory).
  const native = freshFactory(kb.factory)(nativeKernels, kernelFixtures(), RecordBuilder);
  const fallback = freshFactory(kb.factory)(fallbackKernels, kernelFixtures(), RecordBuilder);
  await b.suite(
    kb.name,
    b.add('native', native),
    b.add('fallback', fallback),
    b.cycle(),
    b.complete((summary) => {
      const [n, f] = ['native', 'fallback'].map((name) => summary.results.find((r) => r.name === name));
      console.log(`  native / fallback = ${(n.ops / f.ops).toFixed(2)}x`);
    }),
    b.save({ file: kb.name, folder, format: 'json' }),
    b.save({ file: kb.name, folder, format: 'chart.html' }),
  );
}
console.log(`charts in ${folder}/`);
