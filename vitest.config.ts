import { defineConfig } from 'vitest/config';

// The whole suite runs twice, once per kernel implementation, as two projects so
// that a failure names the implementation it happened on. Without a built
// addon the `native` project still runs: the loader falls back and tests see
// `implementation === 'fallback'`; NORTHSTAR_REQUIRE_NATIVE=1 (set by CI) makes
// the native-only tests fail instead of skip.
export default defineConfig({
  test: {
    include: ['ts/**/*.test.ts'],
    reporters: ['default', './scripts/count-reporter.mjs'],
    projects: [
      { extends: true, test: { name: 'native', env: { NORTHSTAR_NATIVE: '1' } } },
      { extends: true, test: { name: 'fallback', env: { NORTHSTAR_NATIVE: '0' } } },
    ],
  },
});
