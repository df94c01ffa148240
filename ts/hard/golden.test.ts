// Golden files (ts/hard/golden.ts): every database in hard/format/golden/v*/
// opens (on a copy), holds the state hashes its manifest lists for the latest
// commit and every retained snapshot, replays from its log to the same hash,
// and passes verify(); the directories of a retired format version are refused
// with UnsupportedFormat and migrate through replay. A failure here means a
// change broke files users have.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { expect, it } from 'vitest';
import { checkGolden, GOLDEN_ROOT, goldenVersions, regenerate, type GoldenManifest } from './golden.js';
import { removeDir, tempDir } from '../testing/rng.js';
import { FORMAT_VERSION } from '../format/constants.js';

it('the v0 golden databases (format 0, retired) are each refused with UnsupportedFormat naming the migration, left untouched, and migrate through replay to their manifest hash', () => {
  expect(goldenVersions()).toContain('v0');
  const manifest = JSON.parse(fs.readFileSync(nodePath.join(GOLDEN_ROOT, 'v0', 'manifest.json'), 'utf8')) as GoldenManifest;
  expect(manifest.formatVersion).toBe(0);
  expect(manifest.databases.map((d) => d.name)).toEqual(['empty', 'small', 'overflow', 'history', 'replay']);
  const v0 = checkGolden().filter((r) => r.version === 'v0');
  for (const r of v0) expect(r.problem, `v0/${r.name}`).toBeUndefined();
  expect(v0.map((r) => [r.name, r.refused])).toEqual(['empty', 'small', 'overflow', 'history', 'replay'].map((n) => [n, true]));
}, 60_000);

it('the v1 golden databases (empty, small, overflow, history, replay) read back their manifest hashes at every snapshot, replay to them and verify clean', () => {
  expect(goldenVersions()).toContain(`v${FORMAT_VERSION}`);
  const manifest = JSON.parse(fs.readFileSync(nodePath.join(GOLDEN_ROOT, 'v1', 'manifest.json'), 'utf8')) as GoldenManifest;
  expect(manifest.formatVersion).toBe(1);
  expect(FORMAT_VERSION).toBe(1);
  expect(manifest.databases.map((d) => d.name)).toEqual(['empty', 'small', 'overflow', 'history', 'replay']);
  const results = checkGolden();
  for (const r of results) expect(r.problem, `${r.version}/${r.name}`).toBeUndefined();
  const v1 = results.filter((r) => r.version === 'v1');
  expect(v1).toHaveLength(5);
  expect(v1.every((r) => !r.refused)).toBe(true);
  expect(v1.reduce((n, r) => n + r.snapshots, 0)).toBeGreaterThanOrEqual(40);
  // Checking works on copies: the committed files still match their sha256 afterwards.
  expect(checkGolden().every((r) => r.ok)).toBe(true);
}, 60_000);

it('a golden file that differs from its manifest is caught, and regenerate refuses to overwrite an existing version', () => {
  const root = tempDir('golden-test');
  try {
    const dir = regenerate({ root });
    expect(() => regenerate({ root })).toThrow(/never rewritten/);
    expect(checkGolden(root).every((r) => r.ok)).toBe(true);
    // One flipped bit in a data page of the history database.
    const path = nodePath.join(dir, 'history.ndb');
    const bytes = fs.readFileSync(path);
    bytes[bytes.length - 4096 + 100]! ^= 1;
    fs.writeFileSync(path, bytes);
    const bad = checkGolden(root).find((r) => r.name === 'history')!;
    expect(bad.ok).toBe(false);
    expect(bad.problem).toMatch(/sha256/);
  } finally {
    removeDir(root);
  }
}, 60_000);
