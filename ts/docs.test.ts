// The documentation's promises, checked: every code block marked runnable in
// README.md and docs/*.md runs and exits 0, every other block says what it is,
// every relative link (README.md, CONTRIBUTING.md, docs/*.md) reaches an
// existing file and, with a #anchor, an existing heading of that file.
//
// Code block convention (the info string after the opening fence):
//   ```js runnable   an ES module: written to a .mjs file and run with node
//   ```sh runnable   a bash script (set -e), with `northstar` on PATH
//   ```ts fragment   (or js/sh fragment) a signature summary or partial code, not run
//   ```console       a shell session (commands with `$ ` and their output), not run
//   ```text, ```json output or data, not run
// A runnable block imports the package as 'northstardb': the test rewrites that
// specifier to the file URL of the built dist/index.js (run `npm run build`
// first), so no install is needed. Each block runs in an empty directory with
// TMPDIR pointing at an empty directory of its own, and must leave both empty:
// examples clean up after themselves. The environment is passed through, so
// the `native` and `fallback` vitest projects run every example on their own
// kernels.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const docsDir = path.join(root, 'docs');
const docPages = fs.existsSync(docsDir)
  ? fs.readdirSync(docsDir).filter((f) => f.endsWith('.md')).sort().map((f) => path.join('docs', f))
  : [];
/** Files whose code blocks follow the convention above. */
const documented = ['README.md', ...docPages];
/** Files whose links are checked (CONTRIBUTING.md links into the moved sections). */
const linked = [...documented, 'CONTRIBUTING.md'];
const distIndex = path.join(root, 'dist', 'index.js');
const distCli = path.join(root, 'dist', 'cli', 'main.js');

interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  info: string[];
  code: string;
}

/** Fenced code blocks of a Markdown text, fences indented inside list items included. */
function codeBlocks(file: string, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = /^( *)(`{3,}|~{3,})\s*([^`]*)$/.exec(lines[i]);
    if (!start) continue;
    const [, indent, fence, info] = start;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^ *(`{3,}|~{3,})\s*$/.exec(lines[j]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
      body.push(lines[j].slice(Math.min(indent.length, /^ */.exec(lines[j])![0].length)));
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: code fence never closed`);
    blocks.push({ file, line: i + 1, info: info.trim().split(/\s+/).filter(Boolean), code: body.join('\n') + '\n' });
    i = j;
  }
  return blocks;
}

/** The text with every line of a fenced code block blanked (line numbers kept). */
function outsideFences(text: string): string {
  const lines = text.split('\n');
  const out = [...lines];
  for (let i = 0; i < lines.length; i++) {
    const start = /^ *(`{3,}|~{3,})/.exec(lines[i]);
    if (!start) continue;
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^ *(`{3,}|~{3,})\s*$/.exec(lines[j]);
      if (close && close[1][0] === start[1][0] && close[1].length >= start[1].length) break;
    }
    for (let k = i; k <= Math.min(j, lines.length - 1); k++) out[k] = '';
    i = j;
  }
  return out.join('\n');
}

/** The text outside fenced code blocks and inline code spans, with line breaks kept. */
function prose(text: string): string {
  return outsideFences(text)
    .split('\n')
    .map((line) => line.replace(/(`+)[^`]*?\1/g, ''))
    .join('\n');
}

/** GitHub's heading anchors (github-slugger): lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of outsideFences(text).replace(/`/g, '').split('\n')) {
    const m = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const heading = m[1].replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const base = heading.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const read = (rel: string): string => fs.readFileSync(path.join(root, rel), 'utf8');
const blocks = documented.flatMap((f) => codeBlocks(f, read(f)));
const runnable = blocks.filter((b) => b.info.includes('runnable'));
const NOT_RUN = new Set(['console', 'text', 'json']);

describe('documentation layout', () => {
  it('has the reference pages in docs/, each linked from the README', () => {
    expect(docPages.length).toBeGreaterThan(0);
    const readme = prose(read('README.md'));
    for (const page of docPages) expect(readme, `README.md links ${page}`).toContain(`](${page.split(path.sep).join('/')}`);
  });

  it('links every reference page to the spec sections it summarizes', () => {
    for (const page of docPages) {
      expect(prose(read(page)), `${page} links a spec section`).toMatch(/\]\(\.\.\/spec\/[a-z0-9_]+\.md#[^)]+\)/);
    }
  });

  it('says of every code block whether it runs', () => {
    const unmarked = blocks
      .filter((b) => !b.info.includes('runnable') && !b.info.includes('fragment') && !NOT_RUN.has(b.info[0] ?? ''))
      .map((b) => `${b.file}:${b.line} \`\`\`${b.info.join(' ')}`);
    expect(unmarked, 'blocks need `runnable`, `fragment`, or console/text/json').toEqual([]);
    for (const b of runnable) expect(['js', 'sh'], `${b.file}:${b.line}`).toContain(b.info[0]);
  });
});

describe('relative links', () => {
  const headingCache = new Map<string, Set<string>>();
  const headingsOf = (abs: string): Set<string> => {
    let set = headingCache.get(abs);
    if (set === undefined) headingCache.set(abs, (set = anchors(fs.readFileSync(abs, 'utf8'))));
    return set;
  };

  for (const file of linked) {
    it(`${file}: every relative link and anchor resolves`, () => {
      const abs = path.join(root, file);
      const broken: string[] = [];
      const lines = prose(fs.readFileSync(abs, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
          const target = m[1];
          if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
          const hash = target.indexOf('#');
          const rel = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
          const anchor = hash < 0 ? null : target.slice(hash + 1);
          const dest = rel === '' ? abs : path.resolve(path.dirname(abs), rel);
          const where = `${file}:${i + 1} ${target}`;
          if (!fs.existsSync(dest)) {
            broken.push(`${where}: no such file`);
            continue;
          }
          if (anchor === null) continue;
          if (!dest.endsWith('.md')) broken.push(`${where}: an anchor into a file that is not Markdown`);
          else if (!headingsOf(dest).has(anchor)) broken.push(`${where}: no heading with that anchor`);
        }
      });
      expect(broken).toEqual([]);
    });
  }
});

describe('runnable examples', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-docs-'));
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  // `northstar` for the shell examples: the built CLI, as `npx northstar` is in a project.
  const bin = path.join(base, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'northstar'), `#!/bin/sh\nexec "${process.execPath}" "${distCli}" "$@"\n`, { mode: 0o755 });
  const hasBash = process.platform !== 'win32' && spawnSync('bash', ['-c', 'true']).status === 0;

  it('has runnable examples, and the built package they import', () => {
    expect(runnable.length).toBeGreaterThan(0);
    expect(fs.existsSync(distIndex), 'dist/index.js: run `npm run build`').toBe(true);
  });

  const pkg = pathToFileURL(distIndex).href;

  it('runs the examples on the kernels of this vitest project', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(pkg)}); console.log(m.implementation);`], { env: process.env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    if (process.env.NORTHSTAR_NATIVE === '0') expect(r.stdout.trim()).toBe('fallback');
    else expect(['native', 'fallback']).toContain(r.stdout.trim());
  });
  runnable.forEach((b, n) => {
    const isShell = b.info[0] === 'sh';
    it.skipIf(isShell && !hasBash)(`${b.file}:${b.line} (${b.info[0]})`, () => {
      const dir = path.join(base, `block${n}`);
      const cwd = path.join(dir, 'cwd');
      const tmp = path.join(dir, 'tmp');
      fs.mkdirSync(cwd, { recursive: true });
      fs.mkdirSync(tmp);
      const code = b.code.replace(/(['"])northstardb\1/g, (_, q: string) => `${q}${pkg}${q}`);
      const script = path.join(dir, isShell ? 'example.sh' : 'example.mjs');
      fs.writeFileSync(script, code);
      const env = { ...process.env, TMPDIR: tmp, TMP: tmp, TEMP: tmp, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
      const r = isShell
        ? spawnSync('bash', ['-e', '-o', 'pipefail', script], { cwd, env, encoding: 'utf8', timeout: 120_000 })
        : spawnSync(process.execPath, [script], { cwd, env, encoding: 'utf8', timeout: 120_000 });
      const report = `${b.file}:${b.line}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}${r.error ? `\n--- error\n${r.error.message}` : ''}`;
      expect(r.status, report).toBe(0);
      expect(fs.readdirSync(cwd), `${b.file}:${b.line} leaves its working directory empty`).toEqual([]);
      expect(fs.readdirSync(tmp), `${b.file}:${b.line} removes its temporary files`).toEqual([]);
    }, 150_000);
  });

  // The example script the README points to runs as well.
  for (const example of fs.readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.mjs'))) {
    it(`examples/${example}`, () => {
      const r = spawnSync(process.execPath, [path.join(root, 'examples', example)], { cwd: base, env: process.env, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    }, 150_000);
  }
});
