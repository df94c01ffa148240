import * as fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { loadNativeBinding, nativeLoadError } from './loader.js';

const nativeDisabled = process.env.NORTHSTAR_NATIVE === '0';
const nativeRequired = process.env.NORTHSTAR_REQUIRE_NATIVE === '1' && !nativeDisabled;
const binding = loadNativeBinding();
const skipNative = binding === null && !nativeRequired;

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('loadNativeBinding', () => {
  it('returns null and says why when NORTHSTAR_NATIVE=0', () => {
    vi.stubEnv('NORTHSTAR_NATIVE', '0');
    expect(loadNativeBinding()).toBeNull();
    expect(nativeLoadError).toBe('disabled by NORTHSTAR_NATIVE=0');
  });

  it('never throws, whatever the environment', () => {
    for (const value of ['0', '1', '', 'yes']) {
      vi.stubEnv('NORTHSTAR_NATIVE', value);
      expect(() => loadNativeBinding()).not.toThrow();
    }
  });

  it('the crate and the package share one version (a loaded addon of another version is refused)', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const crate = /^version = "([^"]+)"/m.exec(fs.readFileSync(new URL('../../crates/northstar-native/Cargo.toml', import.meta.url), 'utf8'))?.[1];
    expect(crate).toBe(pkg.version);
    if (binding !== null) expect(binding.nativeInfo().version).toBe(pkg.version);
  });

  it.runIf(nativeRequired)('loads the addon when NORTHSTAR_REQUIRE_NATIVE=1', () => {
    if (loadNativeBinding() === null) {
      throw new Error(`native addon did not load: ${nativeLoadError}`);
    }
    expect(nativeLoadError).toBeNull();
  });
});

describe.skipIf(skipNative)('native addon', () => {
  const native = () => {
    if (binding === null) {
      throw new Error(`native addon required (NORTHSTAR_REQUIRE_NATIVE=1) but not loaded: ${nativeLoadError}`);
    }
    return binding;
  };

  it('reports its version and the CRC-32C path it chose', () => {
    const info = native().nativeInfo();
    console.log(`native addon ${info.version}, crc32c backend ${info.crc32cBackend}`);
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(['sse4.2', 'armv8-crc', 'table']).toContain(info.crc32cBackend);
  });

  it.each([
    ['a string', ['123456789']],
    ['a number', [42]],
    ['null', [null]],
    ['no argument', []],
    ['a Float64Array', [new Float64Array(2)]],
  ])('throws TypeError for data that is %s, and keeps working', (_name, args) => {
    const crc32c = native().crc32c as (...args: unknown[]) => number;
    let thrown: unknown;
    try {
      crc32c(...args);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as { code?: string }).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it.each([
    ['-1', -1],
    ['2**33', 2 ** 33],
    ['NaN', Number.NaN],
    ['0.5', 0.5],
  ])('throws RangeError for seed %s, and keeps working', (_name, seed) => {
    const { crc32c } = native();
    let thrown: unknown;
    try {
      crc32c(Buffer.from('a'), seed);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RangeError);
    expect((thrown as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });
});
