import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../functions/core/errors.js';
import { planRun, snapshotIdFor } from '../../functions/core/plan.js';

const settings = {
  dailyHourUtc: 0,
  weeklyDayUtc: 0,
  targets: ['kc-a', 'kc-b'],
  snapshotTiers: ['daily', 'weekly', 'monthly'] as const,
  fullVerifyTiers: ['daily'] as const,
  policy: { hourlyHours: 48, dailyDays: 14, weeklyDays: 90, monthlyDays: 365, incompleteGraceHours: 6 },
};
const plain = { ...settings, snapshotTiers: [], fullVerifyTiers: [] };
const now = new Date('2026-11-23T12:34:56Z');

describe('planRun', () => {
  it('plans an hourly run without snapshots or full verification', () => {
    const plan = planRun(
      { time: '2026-11-23T11:00:00Z' },
      {
        ...settings,
        snapshotTiers: [...settings.snapshotTiers],
        fullVerifyTiers: [...settings.fullVerifyTiers],
      },
      now,
    );
    expect(plan).toEqual({
      backupId: '20261123T1100Z',
      scheduledAt: '2026-11-23T11:00:00.000Z',
      tiers: ['hourly'],
      targets: [
        { target: 'kc-a', takeSnapshot: false, fullVerify: false },
        { target: 'kc-b', takeSnapshot: false, fullVerify: false },
      ],
    });
  });

  it('snapshots and fully verifies the daily run', () => {
    const plan = planRun(
      { time: '2026-11-23T00:00:00Z', targets: ['kc-b'] },
      {
        ...settings,
        snapshotTiers: [...settings.snapshotTiers],
        fullVerifyTiers: [...settings.fullVerifyTiers],
      },
      now,
    );
    expect(plan.tiers).toEqual(['hourly', 'daily']);
    expect(plan.targets).toEqual([{ target: 'kc-b', takeSnapshot: true, fullVerify: true }]);
  });

  it('gives a manual run an id of its own, to the second', () => {
    const plan = planRun({}, plain, now);
    expect(plan.backupId).toBe('20261123T123456Z');
    expect(plan.scheduledAt).toBe('2026-11-23T12:34:56.000Z');
  });

  it('gives a second manual run started in the same second another id', () => {
    const first = planRun({}, plain, now);
    const second = planRun({}, plain, now, new Set([first.backupId]));
    const third = planRun({}, plain, now, new Set([first.backupId, second.backupId]));
    expect([first.backupId, second.backupId, third.backupId]).toEqual([
      '20261123T123456Z',
      '20261123T123456Z-2',
      '20261123T123456Z-3',
    ]);
  });

  it('keeps the id of a scheduled run for its minute, so a replayed run is idempotent', () => {
    const once = planRun({ time: '2026-11-23T12:00:00Z' }, plain, now);
    const again = planRun({ time: '2026-11-23T12:00:00Z' }, plain, now, new Set([once.backupId]));
    expect(again.backupId).toBe(once.backupId);
  });

  it('refuses a scheduled time older than the hourly retention, naming --replay', () => {
    expect(() => planRun({ time: '2026-10-21T00:00:00Z' }, plain, now)).toThrow(
      expect.objectContaining({
        name: 'InvalidInputError',
        message: expect.stringContaining('older than the hourly retention (48 h)'),
        hint: expect.stringContaining('--replay'),
      }),
    );
  });

  it('refuses 1900 even as a replay: its tiers would not keep it', () => {
    expect(() => planRun({ time: '1900-01-01T00:00:00Z', replay: true }, plain, now)).toThrow(
      /past the retention of its tiers/,
    );
  });

  it('replays a missed monthly run with the tiers of its scheduled time', () => {
    const plan = planRun({ time: '2026-11-01T00:00:00Z', replay: true }, plain, now);
    expect(plan.backupId).toBe('20261101T0000Z');
    expect(plan.tiers).toEqual(['hourly', 'daily', 'weekly', 'monthly']);
  });

  it('refuses a replay of a missed hourly run older than its retention', () => {
    expect(() => planRun({ time: '2026-11-20T05:00:00Z', replay: true }, plain, now)).toThrow(
      /past the retention of its tiers \(hourly\)/,
    );
  });

  it('refuses an unknown target and names the configured ones', () => {
    expect(() => planRun({ targets: ['nope'] }, plain, now)).toThrow(
      expect.objectContaining({ name: 'InvalidInputError', hint: 'configured targets: kc-a, kc-b' }),
    );
  });

  it('refuses a time in the future', () => {
    expect(() => planRun({ time: '2026-11-24T00:00:00Z' }, plain, now)).toThrow(InvalidInputError);
  });

  it('makes snapshot ids RDS accepts: lower-case, starting with a letter', () => {
    expect(snapshotIdFor('kc-prod', '20261122T2300Z')).toBe('kb-kc-prod-20261122t2300z');
  });
});
