// Vitest reporter that ends the run with one plain line CI can read:
//
//   N passed, N failed, N skipped
//
// preceded by the same counts per project (`native`, `fallback`). "failed"
// counts failed tests plus test files and suites that failed outside any test
// (a file that does not compile, a throwing beforeAll), so a broken file can
// never read as "0 failed". Unhandled errors count as failures too: vitest
// exits non-zero on them.

export default class CountReporter {
  onTestRunEnd(testModules, unhandledErrors) {
    const byProject = new Map();
    const total = { passed: 0, failed: 0, skipped: 0 };
    for (const testModule of testModules) {
      const name = testModule.project.name || 'default';
      const counts = byProject.get(name) ?? { passed: 0, failed: 0, skipped: 0 };
      byProject.set(name, counts);
      for (const test of testModule.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      counts.failed += testModule.errors().length > 0 ? 1 : 0;
      for (const suite of testModule.children.allSuites()) {
        counts.failed += suite.errors().length > 0 ? 1 : 0;
      }
    }
    for (const [name, counts] of [...byProject].sort()) {
      console.log(`  ${name.padEnd(10)} ${counts.passed} passed  ${counts.failed} failed  ${counts.skipped} skipped`);
      total.passed += counts.passed;
      total.failed += counts.failed;
      total.skipped += counts.skipped;
    }
    total.failed += unhandledErrors.length;
    console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  }
}
