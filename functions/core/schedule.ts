// Backup ids and tiers: derived from the schedule's time alone, so a retried or duplicated run is idempotent.
import { InvalidInputError } from './errors.js';

export const TIERS = ['hourly', 'daily', 'weekly', 'monthly'] as const;
export type Tier = (typeof TIERS)[number];

export interface TierCalendar {
  /** The UTC hour whose run is also the daily backup. */
  dailyHourUtc: number;
  /** The UTC weekday (0 = Sunday) whose daily run is also the weekly backup. */
  weeklyDayUtc: number;
}

/**
 * A scheduled run's id is its minute (`20261122T2300Z`); a manual run's is its second (`20261122T230015Z`), with
 * `-2`, `-3`… when another run already took that second.
 */
const BACKUP_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?Z(?:-([2-9]|[1-9]\d{1,2}))?$/;

/** Parses an ISO 8601 time with an explicit zone; a time without one is ambiguous and refused. */
export function parseScheduledTime(text: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(text)) {
    throw new InvalidInputError(`time "${text}" is not an ISO 8601 time with a zone`, {
      hint: 'write it like 2026-11-22T23:00:00Z',
    });
  }
  const time = new Date(text);
  // Date rolls 2026-02-30 over into March: the written fields must be the ones that were read.
  const [y, mo, d, h, mi, se] = text.split(/[-T:.Z+]/).map(Number) as number[];
  const written = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, se || 0));
  const rolledOver =
    written.getUTCMonth() !== mo! - 1 || written.getUTCDate() !== d || h! > 23 || mi! > 59 || (se ?? 0) > 59;
  if (Number.isNaN(time.getTime()) || rolledOver) {
    throw new InvalidInputError(`time "${text}" is not a valid date`, {
      hint: 'write it like 2026-11-22T23:00:00Z',
    });
  }
  return time;
}

/** `20261122T2300Z`: the scheduled time truncated to the minute; sorts as time does. */
export function backupIdFor(scheduledAt: Date): string {
  const iso = scheduledAt.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}

/** `20261122T230015Z` (or `…Z-2` for the second run started in that second): a manual run's own id. */
export function manualBackupIdFor(startedAt: Date, sequence = 1): string {
  const minute = backupIdFor(startedAt);
  const id = `${minute.slice(0, -1)}${startedAt.toISOString().slice(17, 19)}Z`;
  return sequence > 1 ? `${id}-${sequence}` : id;
}

/** True for an id of a manual run (to the second), false for a scheduled run's (to the minute). */
export function isManualBackupId(backupId: string): boolean {
  return BACKUP_ID.exec(backupId)?.[6] !== undefined;
}

export function isBackupId(text: string): boolean {
  try {
    timeOfBackupId(text);
    return true;
  } catch {
    return false;
  }
}

/** The time a backupId stands for. */
export function timeOfBackupId(backupId: string, check = true): Date {
  const m = BACKUP_ID.exec(backupId);
  if (!m) {
    throw new InvalidInputError(`"${backupId}" is not a backup id`, {
      hint: 'backup ids look like 20261122T2300Z (scheduled) or 20261122T230015Z (manual)',
    });
  }
  const time = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? 0)));
  const again = m[6] === undefined ? backupIdFor(time) : manualBackupIdFor(time, Number(m[7] ?? 1));
  if (check && again !== backupId) {
    throw new InvalidInputError(`"${backupId}" is not a valid date`, {
      hint: 'backup ids look like 20261122T2300Z (scheduled) or 20261122T230015Z (manual)',
    });
  }
  return time;
}

/** Orders backup ids by the time they stand for (a manual run within a minute sorts by its second). */
export function compareBackupIds(a: string, b: string): number {
  const sequence = (id: string) => Number(BACKUP_ID.exec(id)?.[7] ?? 1);
  const ta = timeOfBackupId(a, false).getTime();
  const tb = timeOfBackupId(b, false).getTime();
  if (ta !== tb) return ta - tb;
  if (sequence(a) !== sequence(b)) return sequence(a) - sequence(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every run is hourly; the run in the daily hour is also daily, weekly on the weekly day, monthly on the 1st. */
export function tiersFor(scheduledAt: Date, calendar: TierCalendar): Tier[] {
  const tiers: Tier[] = ['hourly'];
  if (scheduledAt.getUTCHours() !== calendar.dailyHourUtc) return tiers;
  tiers.push('daily');
  if (scheduledAt.getUTCDay() === calendar.weeklyDayUtc) tiers.push('weekly');
  if (scheduledAt.getUTCDate() === 1) tiers.push('monthly');
  return tiers;
}
