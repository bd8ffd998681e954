// Plans one backup run from its request: backupId, tiers, and what each target gets (snapshot, full verification).
import { InvalidInputError } from './errors.js';
import { type RetentionPolicy, retainUntilFor, retentionMs } from './retention.js';
import {
  backupIdFor,
  manualBackupIdFor,
  parseScheduledTime,
  type Tier,
  type TierCalendar,
  tiersFor,
} from './schedule.js';
import { assertKnownTargets } from './targets.js';

export interface RunRequest {
  /** The scheduled time (EventBridge Scheduler's <aws.scheduler.scheduled-time>); now when absent (manual run). */
  time?: string;
  /** `time` is a missed run replayed on purpose: it may then be older than the hourly tier's retention. */
  replay?: boolean;
  /** A subset of the configured targets; all when absent. */
  targets?: string[];
}

export interface PlanSettings extends TierCalendar {
  targets: readonly string[];
  snapshotTiers: readonly Tier[];
  fullVerifyTiers: readonly Tier[];
  policy: RetentionPolicy;
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

/** A schedule's clock may run a little ahead of ours. */
const FUTURE_TOLERANCE_MS = 5 * 60_000;

/**
 * Plans a run. A scheduled run (`time`) gets the id of its minute, so a retried or duplicated run is idempotent;
 * a manual run gets the id of its second, and `takenIds` (the ids already stored that day) make it unique.
 */
export function planRun(
  request: RunRequest,
  settings: PlanSettings,
  now: Date,
  takenIds: ReadonlySet<string> = new Set(),
): RunPlan {
  assertKnownTargets(settings.targets, request.targets ?? []);
  if (request.replay && !request.time) {
    throw new InvalidInputError('a replay needs the scheduled time of the missed run', {
      hint: 'give --time with --replay',
    });
  }
  const chosen = request.targets?.length ? request.targets : settings.targets;
  const manual = !request.time;
  const scheduledAt = request.time ? parseScheduledTime(request.time) : now;
  if (!manual) assertSchedulable(scheduledAt, request.replay === true, settings, now);
  const tiers = tiersFor(scheduledAt, settings);
  const overlaps = (wanted: readonly Tier[]) => tiers.some((tier) => wanted.includes(tier));
  let backupId = backupIdFor(scheduledAt);
  if (manual) {
    let sequence = 1;
    do backupId = manualBackupIdFor(now, sequence++);
    while (takenIds.has(backupId));
  }
  const unit = manual ? 1000 : 60_000;
  return {
    backupId,
    scheduledAt: new Date(Math.floor(scheduledAt.getTime() / unit) * unit).toISOString(),
    tiers,
    targets: chosen.map((target) => ({
      target,
      takeSnapshot: overlaps(settings.snapshotTiers),
      fullVerify: overlaps(settings.fullVerifyTiers),
    })),
  };
}

/**
 * A scheduled time is neither in the future nor older than the hourly tier's retention: an older one would be a
 * backup of today's data under an old label. A replay of a missed run may be older, as long as its own tiers
 * would still keep it (at most the longest retention).
 */
function assertSchedulable(scheduledAt: Date, replay: boolean, settings: PlanSettings, now: Date): void {
  const at = scheduledAt.toISOString();
  if (scheduledAt.getTime() > now.getTime() + FUTURE_TOLERANCE_MS) {
    throw new InvalidInputError(`scheduled time ${at} is in the future`, {
      hint: 'omit --time to back up now, or give a past time',
    });
  }
  const hourlyMs = retentionMs('hourly', settings.policy);
  if (now.getTime() - scheduledAt.getTime() <= hourlyMs) return;
  const hours = settings.policy.hourlyHours;
  if (!replay) {
    throw new InvalidInputError(
      `scheduled time ${at} is older than the hourly retention (${hours} h): the backup would hold today's data under that time`,
      {
        hint: 'omit --time to back up now; to replay a missed scheduled run on purpose, add --replay',
      },
    );
  }
  const retainUntil = retainUntilFor(scheduledAt, tiersFor(scheduledAt, settings), settings.policy);
  if (retainUntil.getTime() <= now.getTime()) {
    throw new InvalidInputError(
      `scheduled time ${at} is past the retention of its tiers (${tiersFor(scheduledAt, settings).join(', ')}): retention would delete the replay at once`,
      { hint: 'a replay must be of a missed run whose tiers would still keep it' },
    );
  }
}

/** RDS snapshot identifiers: letters, digits, hyphens, starting with a letter. */
export function snapshotIdFor(target: string, backupId: string): string {
  return `kb-${target}-${backupId}`.toLowerCase();
}
