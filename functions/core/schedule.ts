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

const BACKUP_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z$/;

/** Parses an ISO 8601 time with an explicit zone; a time without one is ambiguous and refused. */
export function parseScheduledTime(text: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(text)) {
    throw new InvalidInputError(`time "${text}" is not an ISO 8601 time with a zone`, {
      hint: 'write it like 2026-11-22T23:00:00Z',
    });
  }
  const time = new Date(text);
  if (Number.isNaN(time.getTime())) {
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

export function isBackupId(text: string): boolean {
  return BACKUP_ID.test(text) && backupIdFor(timeOfBackupId(text, false)) === text;
}

/** The time a backupId stands for. */
export function timeOfBackupId(backupId: string, check = true): Date {
  const m = BACKUP_ID.exec(backupId);
  if (!m) {
    throw new InvalidInputError(`"${backupId}" is not a backup id`, {
      hint: 'backup ids look like 20261122T2300Z',
    });
  }
  const time = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!));
  if (check && backupIdFor(time) !== backupId) {
    throw new InvalidInputError(`"${backupId}" is not a valid date`, {
      hint: 'backup ids look like 20261122T2300Z',
    });
  }
  return time;
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
