// Writes the seed corpus of the cargo-fuzz targets (crates/northstar-native/fuzz)
// to hard/fuzz/corpus/<target>/: valid pages and log records made by the current
// code, with the control bytes each target expects (ts/hard/fuzz.ts, writeCorpus).
// Run after `npm run build` when the format changes; commit the result.
//
//   npm run build && node scripts/fuzz-corpus.mjs

import { writeCorpus } from '../dist/hard/fuzz.js';

const counts = writeCorpus();
for (const [target, n] of Object.entries(counts)) console.log(`hard/fuzz/corpus/${target}: ${n} files`);
