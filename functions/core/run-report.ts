// A backup run's outcome per target: the failures worth keeping beside the backups, and the run's metrics.
import { z } from 'zod';
import { isKeycloakBackupError } from './errors.js';
import { MANIFEST_FILE, parseBackupKey, targetPrefix } from './layout.js';
import { isVerified, type Manifest } from './manifest.js';
import { type EmfRecord, emfRecord } from './metrics.js';
import type { ManifestKeyring, ObjectStore } from './ports.js';
import { readManifest } from './stored-backups.js';

export const RUN_REPORT_VERSION = 1;

const isoTime = z.string().datetime({ offset: true });

export const stepFailureSchema = z.object({ step: z.string(), error: z.string() });
export type StepFailure = z.infer<typeof stepFailureSchema>;

/** Written for a target whose run failed at some step: manifests only exist for dumps that succeeded. */
export const runReportSchema = z.object({
  reportVersion: z.literal(RUN_REPORT_VERSION),
  backupId: z.string(),
  target: z.string(),
  tiers: z.array(z.string()),
  execution: z.string().nullable(),
  recordedAt: isoTime,
  failures: z.array(stepFailureSchema).min(1),
});
export type RunReport = z.infer<typeof runReportSchema>;

/** One branch's end state as the backup workflow hands it over (DumpBranchDone/Failed, SnapshotBranch…). */
export interface BranchOutcome {
  failed: boolean;
  /** The dump branch of a run that found the backup id held by another run of the same scheduled time. */
  held?: boolean;
  step?: string;
  error?: string;
  skipped?: boolean;
}

export interface TargetOutcome {
  target: string;
  dump: BranchOutcome;
  snapshot: BranchOutcome;
}

/** The failed steps of a target's run; retention runs for all targets, so its failure counts for each. */
export function failuresOf(outcome: TargetOutcome, retentionFailed: boolean): StepFailure[] {
  const failures: StepFailure[] = [];
  for (const branch of [outcome.dump, outcome.snapshot]) {
    if (branch.failed)
      failures.push({ step: branch.step ?? 'target', error: branch.error ?? 'UnknownError' });
  }
  if (retentionFailed) failures.push({ step: 'retention', error: 'RetentionFailed' });
  return failures;
}

/** What the run's metrics need from the stored manifests of the target. */
export interface RunManifests {
  /** This run's manifest, when its dump got that far. */
  current?: Manifest;
  /** The newest backup whose newest verification passed (this run's, or an older one). */
  newestVerified?: Manifest;
  /** The newest valid manifest before this run's backup (for key rotation). */
  previous?: Manifest;
}

/**
 * Reads this run's manifest, the newest verified one and the previous one: the target's manifest keys newest
 * first, reading only as far back as needed. An unreadable manifest is skipped (that backup never counts).
 */
export async function readRunManifests(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
  backupId: string,
): Promise<RunManifests> {
  const ids = new Set<string>();
  for await (const object of store.list(targetPrefix(target))) {
    const parsed = parseBackupKey(object.key);
    if (parsed?.target === target && parsed.file === MANIFEST_FILE && parsed.backupId <= backupId) {
      ids.add(parsed.backupId);
    }
  }
  const found: RunManifests = {};
  for (const id of [...ids].sort().reverse()) {
    let manifest: Manifest;
    try {
      manifest = await readManifest(store, keyring, target, id);
    } catch (error) {
      if (isKeycloakBackupError(error)) continue;
      throw error;
    }
    if (id === backupId) found.current = manifest;
    else found.previous ??= manifest;
    if (isVerified(manifest)) found.newestVerified ??= manifest;
    if (found.newestVerified && found.previous) break;
  }
  return found;
}

/** Keys present in `now` and not in `before`. */
function added(before: Record<string, string>, now: Record<string, string>): number {
  return Object.entries(now).filter(([key, fingerprint]) => before[key] !== fingerprint).length;
}

/** The run's metrics for one target (see METRICS): outcome, failures by step, backup age, sizes, durations, keys. */
export function backupRunMetrics(input: {
  outcome: TargetOutcome;
  failures: readonly StepFailure[];
  manifests: RunManifests;
  primaryRegion: string;
  at: Date;
}): EmfRecord[] {
  const { outcome, failures, manifests, at } = input;
  const target = { Target: outcome.target };
  // A run that found the backup id held made nothing: the run holding it reports the backup.
  const held = outcome.dump.held === true;
  const { newestVerified, previous } = manifests;
  const current = held ? undefined : manifests.current;
  const lastVerification = current?.verification.at(-1);
  const keys = current?.contents.keyFingerprints;
  const previousKeys = previous?.contents.keyFingerprints;
  const records = [
    emfRecord(at, target, {
      BackupsSucceeded: outcome.dump.failed || held ? 0 : 1,
      BackupsFailed: outcome.dump.failed || outcome.snapshot.failed ? 1 : 0,
      NewestVerifiedBackupAgeSeconds: newestVerified
        ? Math.max(0, (at.getTime() - Date.parse(newestVerified.startedAt)) / 1000)
        : undefined,
      DumpPlainBytes: current?.dump.plainBytes,
      DumpStoredBytes: current?.dump.storedBytes,
      DumpDurationSeconds: current ? current.dump.durationMs / 1000 : undefined,
      VerifyDurationSeconds: lastVerification ? lastVerification.durationMs / 1000 : undefined,
      DrCopies: current
        ? new Set(current.copies.filter((c) => c.region !== input.primaryRegion).map((c) => c.region)).size
        : undefined,
      RealmKeys: keys ? Object.keys(keys).length : undefined,
      RealmKeysAppeared: keys && previousKeys ? added(previousKeys, keys) : undefined,
      RealmKeysDisappeared: keys && previousKeys ? added(keys, previousKeys) : undefined,
    }),
  ];
  for (const failure of failures) {
    records.push(
      emfRecord(at, { ...target, Step: failure.step }, { StepFailures: 1 }, { error: failure.error }),
    );
  }
  return records;
}
