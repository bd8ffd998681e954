// Reads what a bucket holds for a target into backups, and reads and writes manifests (authenticated, named errors).
import {
  isKeycloakBackupError,
  KeyMismatchError,
  ManifestInvalidError,
  ObjectChangedError,
  ObjectNotFoundError,
  TransientError,
} from './errors.js';
import { MANIFEST_FILE, manifestKey, parseBackupKey, targetPrefix } from './layout.js';
import { isVerified, type Manifest, parseManifest } from './manifest.js';
import { authenticateManifest, type ManifestTrust, sealManifest } from './manifest-auth.js';
import type { ManifestKeyring, ObjectStore, PutOptions } from './ports.js';
import type { BackupRecord } from './retention.js';
import { compareBackupIds } from './schedule.js';

export interface CatalogEntry extends BackupRecord {
  /** Bytes stored for this backup in this bucket. */
  bytes: number;
  /** The manifest when present, valid and authenticated. */
  parsed?: Manifest;
  /** A manifest that is valid but carries no MAC (written before manifests were authenticated): not trusted. */
  unauthenticated?: Manifest;
  /** The object key of the manifest when it is present. */
  manifestKey?: string;
  /** Why a present manifest could not be used, starting with the error's name. */
  problem?: string;
}

/**
 * Every backup of `target` in `store`, oldest first. A manifest that is unreadable, invalid, tampered with or
 * unauthenticated does not stop the rest: its backup carries a `problem` and counts for nothing (neither for
 * restore nor for retention, which leaves it in place for a person to inspect).
 */
export async function readCatalog(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
): Promise<CatalogEntry[]> {
  const byId = new Map<string, CatalogEntry>();
  for await (const object of store.list(targetPrefix(target))) {
    const parsed = parseBackupKey(object.key);
    if (!parsed || parsed.target !== target) continue;
    let entry = byId.get(parsed.backupId);
    if (!entry) {
      entry = { target, backupId: parsed.backupId, keys: [], lastModified: object.lastModified, bytes: 0 };
      byId.set(parsed.backupId, entry);
    }
    entry.keys.push(object.key);
    entry.bytes += object.size;
    if (object.lastModified > entry.lastModified) entry.lastModified = object.lastModified;
  }

  const entries = [...byId.values()].sort((a, b) => compareBackupIds(a.backupId, b.backupId));
  for (const entry of entries) {
    const key = manifestKey(target, entry.backupId);
    if (!entry.keys.some((k) => k.endsWith(`/${MANIFEST_FILE}`))) continue;
    entry.manifestKey = key;
    try {
      const { manifest, trust } = await readTrustedManifest(store, keyring, target, entry.backupId, {
        allowUnauthenticated: true,
      });
      if (trust === 'unauthenticated') {
        entry.unauthenticated = manifest;
        entry.problem = `ManifestUnauthenticatedError: manifest ${key} carries no MAC`;
      } else {
        entry.parsed = manifest;
        entry.manifest = { retainUntil: new Date(manifest.retainUntil), verified: isVerified(manifest) };
      }
    } catch (error) {
      if (!isKeycloakBackupError(error) || error.kind !== 'fatal') throw error;
      entry.problem = `${error.name}: ${error.message}`;
    }
  }
  return entries;
}

/**
 * Reads one backup's manifest and checks that it is that backup's, under the key in use, and authenticated.
 * ObjectNotFoundError when there is none; ManifestInvalidError when it is not a manifest; ManifestTamperedError,
 * KeyMismatchError or ManifestUnauthenticatedError (unless allowed) when it cannot be trusted.
 */
export async function readTrustedManifest(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
  backupId: string,
  options: { allowUnauthenticated?: boolean } = {},
): Promise<{ manifest: Manifest; trust: ManifestTrust; etag: string }> {
  const key = manifestKey(target, backupId);
  let raw: unknown;
  let etag: string;
  try {
    ({ value: raw, etag } = await store.getJsonWithEtag(key));
  } catch (error) {
    if (isKeycloakBackupError(error)) throw error;
    // Present but not JSON (truncated, overwritten): a damaged manifest, not a crash.
    throw new ManifestInvalidError(`manifest ${key} in ${store.bucket} is unreadable: ${messageOf(error)}`, {
      cause: error,
      hint: 'the backup cannot be trusted; the copy in the other region may be intact (--from-dr)',
    });
  }
  const manifest = parseManifest(raw, key);
  const trust = await authenticateManifest(keyring, raw, manifest, { key, target, backupId, ...options });
  return { manifest, trust, etag };
}

/** readTrustedManifest for callers that accept only authenticated manifests. */
export async function readManifest(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
  backupId: string,
  options: { allowUnauthenticated?: boolean } = {},
): Promise<Manifest> {
  return (await readTrustedManifest(store, keyring, target, backupId, options)).manifest;
}

/** The manifest, or undefined when the backup has none (yet). */
export async function readManifestIfPresent(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
  backupId: string,
): Promise<Manifest | undefined> {
  try {
    return await readManifest(store, keyring, target, backupId);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
}

/**
 * Preflight: the key in use is the key the target's backups were written under. The newest backup whose manifest
 * can be read decides (an unreadable or tampered one is passed over, as everywhere): when it records another key's
 * fingerprint, KeyMismatchError names both before anything is dumped, since a backup under a new key could not be
 * restored with the old one, nor the old ones with it.
 */
export async function assertKeyOfBackups(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
): Promise<void> {
  const backupIds = new Set<string>();
  for await (const object of store.list(targetPrefix(target))) {
    const parsed = parseBackupKey(object.key);
    if (parsed?.target === target && object.key.endsWith(`/${MANIFEST_FILE}`)) backupIds.add(parsed.backupId);
  }
  for (const backupId of [...backupIds].sort(compareBackupIds).reverse()) {
    try {
      await readTrustedManifest(store, keyring, target, backupId, { allowUnauthenticated: true });
      return;
    } catch (error) {
      if (error instanceof KeyMismatchError) {
        throw new KeyMismatchError(
          `target ${target} holds backups written under another key (newest: ${backupId}): ${error.message}`,
          {
            cause: error,
            hint: `configure the key its backups were written under (the key file, or KB_KMS_KEY_ID and KB_DR_KMS_KEY_ID); a backup under this key could not be restored with that one. To start over under a new key on purpose, back up under a new target name`,
          },
        );
      }
      if (!isKeycloakBackupError(error) || error.kind !== 'fatal') throw error;
    }
  }
}

/** Writes a manifest sealed under the keyring, with the key's fingerprint; the only way manifests are written. */
export async function writeManifest(
  store: ObjectStore,
  keyring: ManifestKeyring,
  manifest: Manifest,
  options: PutOptions = {},
): Promise<Manifest> {
  const sealed = await sealManifest(keyring, manifest);
  await store.putJson(manifestKey(manifest.target, manifest.backupId), sealed, options);
  return sealed;
}

/** How often updateManifest reads again after another writer got in first, before it gives up. */
const MANIFEST_UPDATE_ATTEMPTS = 5;

/**
 * Changes a stored manifest without losing another step's change: reads it (trusted, as readManifest), applies
 * `change`, and writes the result only if nobody wrote the manifest since (S3 If-Match on the ETag read); when
 * someone did (a verification and a DR copy of the same backup at once), reads it again and reapplies. Returns
 * the manifest as written. TransientError (the workflow retries it) after MANIFEST_UPDATE_ATTEMPTS lost races.
 */
export async function updateManifest(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
  backupId: string,
  change: (current: Manifest) => Manifest,
  options: Omit<PutOptions, 'createOnly' | 'ifMatch'> & { allowUnauthenticated?: boolean } = {},
): Promise<Manifest> {
  const { allowUnauthenticated, ...put } = options;
  for (let attempt = 1; ; attempt++) {
    const { manifest, etag } = await readTrustedManifest(store, keyring, target, backupId, {
      allowUnauthenticated,
    });
    try {
      return await writeManifest(store, keyring, change(manifest), { ...put, ifMatch: etag });
    } catch (error) {
      if (!(error instanceof ObjectChangedError)) throw error;
      if (attempt >= MANIFEST_UPDATE_ATTEMPTS) {
        // The workflow retries TransientError by name, with backoff.
        throw new TransientError(
          `manifest ${manifestKey(target, backupId)} in ${store.bucket} changed under ${attempt} attempts to update it`,
          { cause: error, hint: "other steps are writing this backup's manifest; the step is retried" },
        );
      }
    }
  }
}

/** Every target that has anything stored in `store`, from the keys themselves. */
export async function listTargets(store: ObjectStore): Promise<string[]> {
  const targets = new Set<string>();
  for await (const object of store.list('')) {
    const parsed = parseBackupKey(object.key);
    if (parsed) targets.add(parsed.target);
  }
  return [...targets].sort();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
