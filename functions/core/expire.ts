// Carries out retention in one region: inventory through the ports, planRetention, then the deletions.

import { MANIFEST_FILE } from './layout.js';
import type { ManifestKeyring, ObjectStore, SnapshotEngine } from './ports.js';
import { planRetention, type RetentionPlan, type RetentionPolicy, type SnapshotRecord } from './retention.js';
import { type CatalogEntry, readCatalog } from './stored-backups.js';

export interface ExpireRequest {
  store: ObjectStore;
  /** Authenticates the manifests: a manifest that fails is left alone, never taken at its word. */
  keyring: ManifestKeyring;
  region: 'primary' | 'dr';
  snapshots: SnapshotEngine;
  targets: readonly string[];
  policy: RetentionPolicy;
  now: Date;
  failedTargets: readonly string[];
  /** Plan only; delete nothing. */
  dryRun?: boolean;
}

/** A manifest present in a bucket that could not be read or trusted: left in place, and said to a person. */
export interface DamagedManifest {
  target: string;
  backupId: string;
  bucket: string;
  key: string;
  /** The error's name (ManifestInvalidError, ManifestTamperedError, KeyMismatchError, ManifestUnauthenticatedError). */
  error: string;
  problem: string;
}

export interface ExpireResult extends RetentionPlan {
  damaged: DamagedManifest[];
}

export async function expireRegion(request: ExpireRequest): Promise<ExpireResult> {
  const backups: CatalogEntry[] = [];
  const snapshots: SnapshotRecord[] = [];
  for (const target of request.targets) {
    backups.push(...(await readCatalog(request.store, request.keyring, target)));
    for (const snapshot of await request.snapshots.list(target, request.region)) {
      snapshots.push({
        target,
        snapshotId: snapshot.snapshotId,
        backupId: snapshot.backupId,
        retainUntil: snapshot.retainUntil,
        createdAt: snapshot.createdAt,
        status: snapshot.status,
      });
    }
  }
  const plan = planRetention({
    backups,
    snapshots,
    policy: request.policy,
    now: request.now,
    failedTargets: request.failedTargets,
  });
  const damaged = backups.flatMap((backup) =>
    // A manifest gone between the listing and the read (expired by a concurrent run) is not damage.
    backup.problem && backup.manifestKey && !backup.problem.startsWith('ObjectNotFoundError')
      ? [
          {
            target: backup.target,
            backupId: backup.backupId,
            bucket: request.store.bucket,
            key: backup.manifestKey,
            error: backup.problem.split(':', 1)[0]!,
            problem: backup.problem,
          },
        ]
      : [],
  );
  if (request.dryRun) return { ...plan, damaged };
  for (const deletion of plan.deleteBackups) {
    // The manifest goes first: a half-deleted backup then reads as incomplete, never as complete.
    const isManifest = (key: string) => key.endsWith(`/${MANIFEST_FILE}`);
    await request.store.deleteObjects(deletion.keys.filter(isManifest));
    await request.store.deleteObjects(deletion.keys.filter((key) => !isManifest(key)));
  }
  for (const deletion of plan.deleteSnapshots) {
    await request.snapshots.delete(deletion.target, deletion.id, request.region);
  }
  return { ...plan, damaged };
}
