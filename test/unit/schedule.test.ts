import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../functions/core/errors.js';
import { backupPrefix, dumpKey, manifestKey, parseBackupKey } from '../../functions/core/layout.js';
import {
  backupIdFor,
  compareBackupIds,
  isBackupId,
  isManualBackupId,
  manualBackupIdFor,
  parseScheduledTime,
  tiersFor,
  timeOfBackupId,
} from '../../functions/core/schedule.js';

const calendar = { dailyHourUtc: 0, weeklyDayUtc: 0 };

describe('backup ids', () => {
  it('derives a time-sortable id from the scheduled time, truncated to the minute', () => {
    expect(backupIdFor(new Date('2026-11-22T23:00:42.5Z'))).toBe('20261122T2300Z');
  });

  it('gives the same id to a retried run of the same schedule', () => {
    const first = backupIdFor(parseScheduledTime('2026-11-22T23:00:00Z'));
    const retried = backupIdFor(parseScheduledTime('2026-11-23T00:00:00+01:00'));
    expect(retried).toBe(first);
  });

  it('reads an id back into its time and refuses impossible dates', () => {
    expect(timeOfBackupId('20261122T2300Z').toISOString()).toBe('2026-11-22T23:00:00.000Z');
    expect(isBackupId('20261131T2300Z')).toBe(false);
    expect(() => timeOfBackupId('2026-11-22')).toThrow(InvalidInputError);
  });

  it('refuses a time without a zone, naming the expected form', () => {
    expect(() => parseScheduledTime('2026-11-22T23:00:00')).toThrow(/ISO 8601 time with a zone/);
    expect(() => parseScheduledTime('yesterday')).toThrow(InvalidInputError);
  });
});

describe('tiers', () => {
  it('makes every run hourly and only the daily hour daily', () => {
    expect(tiersFor(new Date('2026-11-24T13:00:00Z'), calendar)).toEqual(['hourly']);
    expect(tiersFor(new Date('2026-11-24T00:00:00Z'), calendar)).toEqual(['hourly', 'daily']);
  });

  it('adds weekly on the weekly day and monthly on the 1st', () => {
    // 2026-11-22 is a Sunday; 2026-12-01 a Tuesday; 2026-03-01 a Sunday
    expect(tiersFor(new Date('2026-11-22T00:00:00Z'), calendar)).toEqual(['hourly', 'daily', 'weekly']);
    expect(tiersFor(new Date('2026-12-01T00:00:00Z'), calendar)).toEqual(['hourly', 'daily', 'monthly']);
    expect(tiersFor(new Date('2026-03-01T00:00:00Z'), calendar)).toEqual([
      'hourly',
      'daily',
      'weekly',
      'monthly',
    ]);
  });

  it('follows a configured daily hour and weekday', () => {
    const custom = { dailyHourUtc: 3, weeklyDayUtc: 2 };
    expect(tiersFor(new Date('2026-11-24T03:00:00Z'), custom)).toEqual(['hourly', 'daily', 'weekly']);
    expect(tiersFor(new Date('2026-11-24T00:00:00Z'), custom)).toEqual(['hourly']);
  });
});

describe('storage layout', () => {
  it('places a backup under target/yyyy/mm/dd/backupId', () => {
    expect(backupPrefix('kc-prod', '20261122T2300Z')).toBe('kc-prod/2026/11/22/20261122T2300Z/');
    expect(dumpKey('kc-prod', '20261122T2300Z')).toBe('kc-prod/2026/11/22/20261122T2300Z/dump.pgdump.enc');
  });

  it('parses its own keys back and ignores foreign ones', () => {
    expect(parseBackupKey(manifestKey('kc', '20260101T0000Z'))).toEqual({
      target: 'kc',
      backupId: '20260101T0000Z',
      file: 'manifest.json',
    });
    expect(parseBackupKey('kc/drills/x/drill-report.json')).toBeUndefined();
  });
});

describe('manual backup ids', () => {
  it('gives a manual run the id of its second, and a numbered one for a second run in that second', () => {
    const at = new Date('2026-11-22T23:00:15.900Z');
    expect(manualBackupIdFor(at)).toBe('20261122T230015Z');
    expect(manualBackupIdFor(at, 2)).toBe('20261122T230015Z-2');
    expect(isManualBackupId('20261122T230015Z-2')).toBe(true);
    expect(isManualBackupId('20261122T2300Z')).toBe(false);
    expect(timeOfBackupId('20261122T230015Z-2').toISOString()).toBe('2026-11-22T23:00:15.000Z');
  });

  it('refuses ids that only look like backup ids', () => {
    for (const id of ['20261122T2300Z-2', '20261122T230015Z-1', '20261122T230060Z', '20261122T230015Z-02']) {
      expect(isBackupId(id), id).toBe(false);
    }
  });

  it('orders ids by the time they stand for, not as strings', () => {
    const ids = [
      '20261122T2301Z',
      '20261122T230015Z-2',
      '20261122T2300Z',
      '20261122T230015Z',
      '20261122T230059Z',
    ];
    expect([...ids].sort(compareBackupIds)).toEqual([
      '20261122T2300Z',
      '20261122T230015Z',
      '20261122T230015Z-2',
      '20261122T230059Z',
      '20261122T2301Z',
    ]);
  });

  it('keeps a manual id in the storage layout', () => {
    expect(parseBackupKey('kc/2026/11/22/20261122T230015Z-2/manifest.json')).toEqual({
      target: 'kc',
      backupId: '20261122T230015Z-2',
      file: 'manifest.json',
    });
  });
});
