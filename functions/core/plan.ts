// Plans one backup run from its request: backupId, tiers, and what each target gets (snapshot, full verification).
import { InvalidInputError } from './errors.js';
import { backupIdFor, parseScheduledTime, type Tier, type TierCalendar, tiersFor } from './schedule.js';

export interface RunRequest {
  /** The scheduled time (EventBridge Scheduler's <aws.scheduler.scheduled-time>); now when absent (manual run). */
  time?: string;
  /** A subset of the configured targets; all when absent. */
  targets?: string[];
}

export interface PlanSettings extends TierCalendar {
  targets: readonly string[];
  snapshotTiers: readonly Tier[];
  fullVerifyTiers: readonly Tier[];
}

export interface TargetPlan {
  target: string;
  takeSnapshot: boolean;
  fullVerify: boolean;
}

export interface RunPlan {
  backupId: string;
  scheduledAt: string;
  tiers: Tier[];
  targets: TargetPlan[];
}

export function planRun(request: RunRequest, settings: PlanSettings, now: Date): RunPlan {
  const scheduledAt = request.time ? parseScheduledTime(request.time) : now;
  if (scheduledAt.getTime() > now.getTime() + 5 * 60_000) {
    throw new InvalidInputError(`scheduled time ${scheduledAt.toISOString()} is in the future`, {
      hint: 'omit --time to back up now, or give a past time',
    });
  }
  const unknown = (request.targets ?? []).filter((t) => !settings.targets.includes(t));
  if (unknown.length > 0) {
    throw new InvalidInputError(`unknown target ${unknown.join(', ')}`, {
      hint: `configured targets: ${settings.targets.join(', ')}`,
    });
  }
  const tiers = tiersFor(scheduledAt, settings);
  const overlaps = (wanted: readonly Tier[]) => tiers.some((tier) => wanted.includes(tier));
  const chosen = request.targets?.length ? request.targets : settings.targets;
  return {
    backupId: backupIdFor(scheduledAt),
    scheduledAt: new Date(Math.floor(scheduledAt.getTime() / 60_000) * 60_000).toISOString(),
    tiers,
    targets: chosen.map((target) => ({
      target,
      takeSnapshot: overlaps(settings.snapshotTiers),
      fullVerify: overlaps(settings.fullVerifyTiers),
    })),
  };
}

/** RDS snapshot identifiers: letters, digits, hyphens, starting with a letter. */
export function snapshotIdFor(target: string, backupId: string): string {
  return `kb-${target}-${backupId}`.toLowerCase();
}
