// Writes the golden databases of the current format version into
// hard/format/golden/v<FORMAT_VERSION>/ with manifest.json (ts/hard/golden.ts).
// Only when the format version changes: an existing version directory is never
// rewritten (--force only while that version is unreleased). See
// hard/format/golden/README.md.
//
//   npm run build && node scripts/golden.mjs [--force]

import { regenerate } from '../dist/hard/golden.js';

const dir = regenerate({ force: process.argv.includes('--force') });
console.log(`golden files written to ${dir}`);
