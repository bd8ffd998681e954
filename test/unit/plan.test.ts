import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../functions/core/errors.js';
import { planRun, snapshotIdFor } from '../../functions/core/plan.js';

const settings = {
  dailyHourUtc: 0,
  weeklyDayUtc: 0,
  targets: ['kc-a', 'kc-b'],
  snapshotTiers: ['daily', 'weekly', 'monthly'] as const,
  fullVerifyTiers: ['daily'] as const,
};
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

  it('uses now for a manual run, to the minute', () => {
    const plan = planRun({}, { ...settings, snapshotTiers: [], fullVerifyTiers: [] }, now);
    expect(plan.backupId).toBe('20261123T1234Z');
    expect(plan.scheduledAt).toBe('2026-11-23T12:34:00.000Z');
  });

  it('refuses an unknown target and names the configured ones', () => {
    expect(() =>
      planRun({ targets: ['nope'] }, { ...settings, snapshotTiers: [], fullVerifyTiers: [] }, now),
    ).toThrow(expect.objectContaining({ name: 'InvalidInputError', hint: 'configured targets: kc-a, kc-b' }));
  });

  it('refuses a time in the future', () => {
    expect(() =>
      planRun({ time: '2026-11-24T00:00:00Z' }, { ...settings, snapshotTiers: [], fullVerifyTiers: [] }, now),
    ).toThrow(InvalidInputError);
  });

  it('makes snapshot ids RDS accepts: lower-case, starting with a letter', () => {
    expect(snapshotIdFor('kc-prod', '20261122T2300Z')).toBe('kb-kc-prod-20261122t2300z');
  });
});
