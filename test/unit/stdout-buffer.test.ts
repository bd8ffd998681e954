import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bufferedStdoutEnv,
  findStdbufLibrary,
  PG_DUMP_STDOUT_BUFFER,
  stdbufCandidates,
} from '../../functions/adapters/postgres/stdout-buffer.js';

describe("pg_dump's stdout buffer", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kb-stdbuf-'));
    await mkdir(path.join(dir, 'bin'));
    await mkdir(path.join(dir, 'lib'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('preloads the library after any preload already set, and asks for 64 KiB', () => {
    expect(bufferedStdoutEnv({ PATH: '/bin' }, '/opt/lib/libstdbuf.so')).toEqual({
      PATH: '/bin',
      LD_PRELOAD: '/opt/lib/libstdbuf.so',
      _STDBUF_O: '65536',
    });
    expect(bufferedStdoutEnv({ LD_PRELOAD: '/x/libfirst.so' }, '/opt/lib/libstdbuf.so', 8192)).toEqual({
      LD_PRELOAD: '/x/libfirst.so /opt/lib/libstdbuf.so',
      _STDBUF_O: '8192',
    });
    expect(PG_DUMP_STDOUT_BUFFER).toBe(65536);
  });

  it('looks beside the programs first (the layer: /opt/bin and /opt/lib), then where coreutils puts it', () => {
    expect(stdbufCandidates('/opt/bin')).toEqual([
      '/opt/lib/libstdbuf.so',
      '/usr/libexec/coreutils/libstdbuf.so',
      '/usr/lib/coreutils/libstdbuf.so',
      '/usr/local/libexec/coreutils/libstdbuf.so',
    ]);
  });

  it('takes the first library that is there, and none when none is', async () => {
    const missing = path.join(dir, 'nowhere', 'libstdbuf.so');
    const beside = path.join(dir, 'lib', 'libstdbuf.so');
    expect(await findStdbufLibrary([missing])).toBeUndefined();
    await writeFile(beside, 'ELF');
    const candidates = stdbufCandidates(path.join(dir, 'bin'));
    expect(await findStdbufLibrary([missing, ...candidates])).toBe(beside);
  });
});
