// Reads what a bucket holds for a target into backups: complete ones (with a valid manifest) and incomplete ones.
import { isKeycloakBackupError } from './errors.js';
import { MANIFEST_FILE, manifestKey, parseBackupKey, targetPrefix } from './layout.js';
import { isVerified, type Manifest, parseManifest } from './manifest.js';
import type { ObjectStore } from './ports.js';
import type { BackupRecord } from './retention.js';

export interface CatalogEntry extends BackupRecord {
  /** Bytes stored for this backup in this bucket. */
  bytes: number;
  /** The manifest when present and valid. */
  parsed?: Manifest;
  /** Why a present manifest could not be used. */
  problem?: string;
}

/** Every backup of `target` in `store`, oldest first. */
export async function readCatalog(store: ObjectStore, target: string): Promise<CatalogEntry[]> {
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

  const entries = [...byId.values()].sort((a, b) => (a.backupId < b.backupId ? -1 : 1));
  for (const entry of entries) {
    const key = manifestKey(target, entry.backupId);
    if (!entry.keys.some((k) => k.endsWith(`/${MANIFEST_FILE}`))) continue;
    try {
      const manifest = parseManifest(await store.getJson(key), key);
      entry.parsed = manifest;
      entry.manifest = { retainUntil: new Date(manifest.retainUntil), verified: isVerified(manifest) };
    } catch (error) {
      // An unreadable manifest makes the backup incomplete: it never counts for restore, and expires after grace.
      if (!isKeycloakBackupError(error)) throw error;
      entry.problem = error.message;
    }
  }
  return entries;
}

/** Reads one backup's manifest; ObjectNotFoundError when the backup is incomplete or absent. */
export async function readManifest(store: ObjectStore, target: string, backupId: string): Promise<Manifest> {
  const key = manifestKey(target, backupId);
  return parseManifest(await store.getJson(key), key);
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
