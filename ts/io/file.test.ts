// The real file system's create step (ts/io/file.ts, spec/file_format_v1.md
// §8.6): a file appears whole under its name or not at all, and never replaces
// one that is there.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import { NorthstarError } from '../errors.js';
import { useTempDir } from '../testing/fixtures.js';
import { FaultyFileSystem } from './faulty.js';
import { createFileAtomically, nodeFileSystem } from './file.js';

const tmp = useTempDir('northstar-io-');

describe('createFileAtomically', () => {
  it('creates the file with exactly the bytes, and leaves no temporary file', () => {
    const path = nodePath.join(tmp.dir, 'f');
    createFileAtomically(path, Buffer.from('hello'));
    expect(fs.readFileSync(path, 'utf8')).toBe('hello');
    expect(fs.readdirSync(tmp.dir)).toEqual(['f']);
  });

  it('never replaces a file that exists: IoError (cause EEXIST), the file untouched, no temporary file left', () => {
    const path = nodePath.join(tmp.dir, 'mine');
    fs.writeFileSync(path, 'a file someone needs');
    let thrown: unknown;
    try {
      nodeFileSystem.createAtomically(path, Buffer.from('new'));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NorthstarError);
    expect((thrown as NorthstarError).code).toBe('IoError');
    expect(((thrown as NorthstarError).cause as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(fs.readFileSync(path, 'utf8')).toBe('a file someone needs');
    expect(fs.readdirSync(tmp.dir)).toEqual(['mine']);
  });

  it('the fault-injecting file system keeps the same contract', () => {
    const ffs = new FaultyFileSystem();
    ffs.createAtomically('/x', Buffer.from('one'));
    expect(() => ffs.createAtomically('/x', Buffer.from('two'))).toThrow(NorthstarError);
    expect(Buffer.from(ffs.bytes('/x')).toString()).toBe('one');
  });
});
