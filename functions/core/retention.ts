// Retention as a pure function from (inventory, policy, now) to a plan; an adapter carries the plan out.
import { compareBackupIds, type Tier } from './schedule.js';

export interface RetentionPolicy {
  hourlyHours: number;
  dailyDays: number;
  weeklyDays: number;
  monthlyDays: number;
  /** How long a backup without a manifest may sit before it is treated as abandoned. */
  incompleteGraceHours: number;
  /** Manual snapshots a region may hold (RDS: 100 per region and account); warned about from 90 %. */
  snapshotQuota?: number;
}

/** RDS keeps 100 manual snapshots per region and account; the local engine has no such limit. */
export const RDS_MANUAL_SNAPSHOT_QUOTA = 100;

/** Share of the snapshot quota from which the plan warns: the next runs would fail to snapshot. */
export const SNAPSHOT_QUOTA_WARNING = 0.9;

const HOUR = 3_600_000;

export function retentionMs(tier: Tier, policy: RetentionPolicy): number {
  switch (tier) {
    case 'hourly':
      return policy.hourlyHours * HOUR;
    case 'daily':
      return policy.dailyDays * 24 * HOUR;
    case 'weekly':
      return policy.weeklyDays * 24 * HOUR;
    case 'monthly':
      return policy.monthlyDays * 24 * HOUR;
  }
}

/** A backup's retain-until: its scheduled time plus the longest retention of its tiers. */
export function retainUntilFor(scheduledAt: Date, tiers: readonly Tier[], policy: RetentionPolicy): Date {
  const longest = Math.max(...tiers.map((tier) => retentionMs(tier, policy)));
  return new Date(scheduledAt.getTime() + longest);
}

/** One backup as found in a bucket: its files, and what its manifest says if it has one. */
export interface BackupRecord {
  target: string;
  backupId: string;
  keys: string[];
  /** Newest modification among its objects. */
  lastModified: Date;
  manifest?: { retainUntil: Date; verified: boolean };
  /** A manifest is there but cannot be read or trusted: the backup is left in place, for a person to inspect. */
  problem?: string;
}

export interface SnapshotRecord {
  target: string;
  snapshotId: string;
  backupId?: string;
  retainUntil?: Date;
  createdAt: Date;
  status: string;
}

export interface RetentionInput {
  /** Backups and snapshots of one region. */
  backups: readonly BackupRecord[];
  snapshots: readonly SnapshotRecord[];
  policy: RetentionPolicy;
  now: Date;
  /** Targets whose current run failed: nothing of theirs is expired until backups succeed again. */
  failedTargets: readonly string[];
}

export interface Deletion {
  target: string;
  id: string;
  keys: string[];
  reason: 'expired' | 'incomplete';
}

export interface RetentionPlan {
  deleteBackups: Deletion[];
  deleteSnapshots: Deletion[];
  /** Targets left untouched, with why. */
  paused: { target: string; reason: string }[];
  kept: number;
  warnings: string[];
}

/**
 * Expired backups and snapshots go, abandoned incomplete backups go after the grace period; the newest verified
 * backup (and the newest available snapshot) of a target stays however old; a failing target keeps everything.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { policy, now } = input;
  const plan: RetentionPlan = { deleteBackups: [], deleteSnapshots: [], paused: [], kept: 0, warnings: [] };
  const targets = new Set([...input.backups.map((b) => b.target), ...input.snapshots.map((s) => s.target)]);

  for (const target of [...targets].sort()) {
    const backups = input.backups
      .filter((b) => b.target === target)
      .sort((a, b) => compareBackupIds(a.backupId, b.backupId));
    const snapshots = input.snapshots.filter((s) => s.target === target).sort(byId((s) => s.snapshotId));
    const pause = pauseReason(target, backups, input.failedTargets);
    if (pause) {
      plan.paused.push({ target, reason: pause });
      plan.kept += backups.length + snapshots.length;
      continue;
    }

    const newestVerified = backups.filter((b) => b.manifest?.verified && !b.problem).at(-1)?.backupId;
    for (const backup of backups) {
      if (backup.problem) {
        // Neither trusted nor expired: a damaged or tampered manifest could claim any retain-until.
        plan.kept++;
        plan.warnings.push(`backup ${backup.backupId} of ${target} is left in place: ${backup.problem}`);
      } else if (!backup.manifest) {
        const abandoned = now.getTime() - backup.lastModified.getTime() > policy.incompleteGraceHours * HOUR;
        if (abandoned) plan.deleteBackups.push(deletion(target, backup.backupId, backup.keys, 'incomplete'));
        else plan.kept++;
      } else if (backup.backupId !== newestVerified && backup.manifest.retainUntil < now) {
        plan.deleteBackups.push(deletion(target, backup.backupId, backup.keys, 'expired'));
      } else {
        plan.kept++;
      }
    }

    const newestAvailable = snapshots.filter((s) => s.status === 'available').at(-1)?.snapshotId;
    for (const snapshot of snapshots) {
      const expired = snapshot.retainUntil !== undefined && snapshot.retainUntil < now;
      const settled = snapshot.status === 'available' || snapshot.status === 'failed';
      if (expired && settled && snapshot.snapshotId !== newestAvailable) {
        plan.deleteSnapshots.push(deletion(target, snapshot.snapshotId, [], 'expired'));
      } else {
        plan.kept++;
      }
    }
  }

  const quota = policy.snapshotQuota;
  const remaining = input.snapshots.length - plan.deleteSnapshots.length;
  if (quota !== undefined && remaining >= quota * SNAPSHOT_QUOTA_WARNING) {
    plan.warnings.push(
      `${remaining} manual snapshots remain of the region's quota of ${quota}: shorten the snapshot tiers' retention, remove KB_SNAPSHOT_TIERS entries, or raise the quota`,
    );
  }
  return plan;
}

function pauseReason(target: string, backups: readonly BackupRecord[], failedTargets: readonly string[]) {
  if (failedTargets.includes(target)) return 'the current backup run of this target failed';
  const newestComplete = backups.filter((b) => b.manifest && !b.problem).at(-1);
  if (newestComplete && !newestComplete.manifest?.verified) {
    return `the newest backup ${newestComplete.backupId} is not verified`;
  }
  return undefined;
}

function deletion(target: string, id: string, keys: string[], reason: Deletion['reason']): Deletion {
  return { target, id, keys, reason };
}

function byId<T>(id: (item: T) => string) {
  return (a: T, b: T) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0);
}
