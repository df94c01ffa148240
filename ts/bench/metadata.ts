// What a result says about where it was measured: the machine (CPU, cores,
// memory, OS, the file system of the benchmark directory), the build (Node,
// Rust, kernels) and the git checkout. Works on Linux, macOS and Windows;
// anything a platform cannot tell becomes 'unknown', never an exception.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { implementation } from '../native/kernels.js';
import { loadNativeBinding } from '../native/loader.js';
import type { BuildInfo, GitInfo, MachineProfile, ProfileName } from './schema.js';

export const UNKNOWN = 'unknown';

/** stdout of a short command, trimmed, or null if it fails or takes over 5 s. */
function run(cmd: string, args: string[], cwd?: string): string | null {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000, windowsHide: true }).trim();
  } catch {
    return null;
  }
}

/**
 * The file system type holding `dir`: Linux, the longest mount point in
 * /proc/self/mounts that contains it; macOS, the `(type, …)` of that mount in
 * `mount` output; Windows, the volume's FileSystem from PowerShell Get-Volume.
 */
export function fileSystemType(dir: string): string {
  const abs = path.resolve(dir);
  try {
    if (process.platform === 'linux') {
      let best = '';
      let type = UNKNOWN;
      for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
        const [, mnt, fstype] = line.split(' ');
        if (!mnt || !fstype) continue;
        const m = mnt.replace(/\\040/g, ' ');
        if ((abs === m || abs.startsWith(m.endsWith('/') ? m : m + '/')) && m.length >= best.length) {
          best = m;
          type = fstype;
        }
      }
      return type;
    }
    if (process.platform === 'darwin') {
      const out = run('mount', []);
      if (out === null) return UNKNOWN;
      let best = '';
      let type = UNKNOWN;
      for (const line of out.split('\n')) {
        const m = / on (.+) \(([^,)]+)/.exec(line);
        if (!m) continue;
        const mnt = m[1]!;
        if ((abs === mnt || abs.startsWith(mnt === '/' ? '/' : mnt + '/')) && mnt.length >= best.length) {
          best = mnt;
          type = m[2]!;
        }
      }
      return type;
    }
    if (process.platform === 'win32') {
      const drive = /^([A-Za-z]):/.exec(abs)?.[1];
      if (!drive) return UNKNOWN;
      const out = run('powershell.exe', ['-NoProfile', '-Command', `(Get-Volume -DriveLetter ${drive}).FileSystem`]);
      return out && out.length > 0 ? out : UNKNOWN;
    }
  } catch {
    // fall through
  }
  return UNKNOWN;
}

export function machineProfile(name: ProfileName, benchDir: string): MachineProfile {
  const cpus = safe(() => os.cpus(), []);
  const cores = safe(() => (typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length), cpus.length) || 1;
  return {
    name,
    cpu_model: cpus[0]?.model?.trim() || UNKNOWN,
    cores,
    ram_bytes: safe(() => os.totalmem(), 0),
    os: safe(() => `${process.platform} ${os.release()} (${os.type()})`, UNKNOWN),
    arch: process.arch || UNKNOWN,
    fs_type: fileSystemType(benchDir),
  };
}

let rustVersion: string | undefined;

export function buildInfo(impl = implementation): BuildInfo {
  rustVersion ??= run('rustc', ['--version']) ?? UNKNOWN;
  const info: BuildInfo = {
    node_version: process.version,
    rust_version: rustVersion,
    implementation: impl,
    // scripts/build.mjs always builds the addon with --release; without it there is no native code.
    mode: impl === 'native' ? 'release' : UNKNOWN,
  };
  if (impl === 'native') {
    const backend = safe(() => loadNativeBinding()?.nativeInfo().crc32cBackend, undefined);
    if (backend) info.crc32c_backend = backend;
  }
  return info;
}

export function gitInfo(cwd = process.cwd()): GitInfo {
  const sha = run('git', ['rev-parse', 'HEAD'], cwd);
  if (sha === null || !/^[0-9a-f]{40}$/.test(sha)) return { sha: UNKNOWN, branch: UNKNOWN, dirty: null };
  const branch = run('git', ['rev-parse', '--abbrev-ref', 'HEAD'], cwd) || UNKNOWN;
  const status = run('git', ['status', '--porcelain', '--untracked-files=no'], cwd);
  return { sha, branch, dirty: status === null ? null : status.length > 0 };
}

function safe<T>(f: () => T, dflt: T): T {
  try {
    return f();
  } catch {
    return dflt;
  }
}
