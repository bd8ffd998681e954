// The local key file: created only on a true first run, never over backups written under another key.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureKeyFile, localKeyFingerprint } from '../../functions/adapters/local/key-file.js';
import { KeyMismatchError } from '../../functions/core/errors.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('ensureKeyFile', () => {
  it('creates the key on a first run (no backups stored)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kb-key-'));
    const file = path.join(dir, 'local.key');
    const key = await ensureKeyFile(file, { storedBackups: async () => [] });
    expect(key).toHaveLength(32);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses to mint a key over stored backups, naming the fingerprint they were written under', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kb-key-'));
    const file = path.join(dir, 'local.key');
    const old = localKeyFingerprint(Buffer.alloc(32, 7));
    const error = await ensureKeyFile(file, { storedBackups: async () => [old, old, undefined] }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyMismatchError);
    expect((error as Error).message).toContain(`written under the key with fingerprint ${old}`);
    expect((error as Error).message).toContain('the key in use: none (missing)');
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fingerprints a key without revealing it, the same way every time', () => {
    const key = Buffer.alloc(32, 1);
    expect(localKeyFingerprint(key)).toMatch(/^[0-9a-f]{32}$/);
    expect(localKeyFingerprint(key)).toBe(localKeyFingerprint(Buffer.alloc(32, 1)));
    expect(localKeyFingerprint(key)).not.toBe(localKeyFingerprint(Buffer.alloc(32, 2)));
    expect(localKeyFingerprint(key)).not.toContain(key.toString('hex').slice(0, 8));
  });
});
