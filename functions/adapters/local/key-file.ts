// The local AES-256 key file: created once with mode 0600, refused when others can read it; never logged.
import { hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ConfigurationError, KeyMismatchError, KeyUnavailableError } from '../../core/errors.js';

export const KEY_BYTES = 32;

/**
 * Identifies a key without revealing it: 128 bits of HKDF-SHA256 under a label of its own, so the fingerprint
 * shares nothing with the data keys, the MAC keys or anything else derived from the key.
 */
export function localKeyFingerprint(key: Uint8Array): string {
  const derived = hkdfSync('sha256', key, Buffer.alloc(0), 'keycloak-backup/key-fingerprint/v1', 16);
  return Buffer.from(derived).toString('hex');
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

/** Reads an existing key file, refusing one that group or others can read, or that is not 32 bytes. */
export async function readKeyFile(file: string): Promise<Buffer> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(file);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) {
      throw new KeyUnavailableError(`the local key file ${file} does not exist`, {
        cause: error,
        hint: 'start the local stack once (it creates the key), or point KB_LOCAL_KEY_FILE at the key file',
      });
    }
    throw new KeyUnavailableError(`cannot read the local key file ${file}`, { cause: error });
  }
  if (!info.isFile()) {
    throw new ConfigurationError(`the local key file ${file} is not a regular file`, {
      hint: 'point KB_LOCAL_KEY_FILE at the key file',
    });
  }
  const mode = info.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigurationError(
      `the local key file ${file} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')})`,
      { hint: `restrict it with: chmod 600 ${file}` },
    );
  }
  const key = await readFile(file);
  if (key.length !== KEY_BYTES) {
    throw new ConfigurationError(`the local key file ${file} holds ${key.length} bytes, not ${KEY_BYTES}`, {
      hint: 'restore the original key file from your copy; backups encrypted with it cannot be read without it',
    });
  }
  return key;
}

export interface EnsureKeyOptions {
  /**
   * The key fingerprints recorded in the backups already stored (one per backup; undefined where a manifest
   * records none). A key is created only when there are none: a new key over existing backups could read none of
   * them, and every backup after it would be unreadable with the old key.
   */
  storedBackups?: () => Promise<(string | undefined)[]>;
}

/**
 * Returns the local key, creating the key file with 32 random bytes on a true first run (no backups stored).
 * Creation is atomic: the key is written to a private temporary file and linked into place, so a concurrent
 * reader never sees a half-written key and two concurrent creators cannot both win.
 */
export async function ensureKeyFile(file: string, options: EnsureKeyOptions = {}): Promise<Buffer> {
  try {
    await stat(file);
    return await readKeyFile(file);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  const stored = (await options.storedBackups?.()) ?? [];
  if (stored.length > 0) {
    const fingerprints = [...new Set(stored.filter((f): f is string => f !== undefined))];
    throw new KeyMismatchError(
      `the local key file ${file} is missing, but the buckets hold ${stored.length} backups written under the key with fingerprint ${fingerprints.join(', ') || '(not recorded)'}; the key in use: none (missing). A new key is not created over them`,
      {
        hint: `put the original key file back at ${file} (mode 0600); without it these backups cannot be decrypted`,
      },
    );
  }
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const pending = `${file}.${randomUUID()}.tmp`;
  const handle = await open(pending, 'wx', 0o600);
  try {
    await handle.writeFile(randomBytes(KEY_BYTES));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(pending, file);
  } catch (error) {
    // An existing key is kept: replacing it would make every backup encrypted with it unreadable.
    if (!isErrno(error, 'EEXIST')) throw error;
  } finally {
    await unlink(pending);
  }
  return readKeyFile(file);
}
