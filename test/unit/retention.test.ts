import { describe, expect, it } from 'vitest';
import { type BackupRecord, planRetention, retainUntilFor } from '../../functions/core/retention.js';

const policy = { hourlyHours: 48, dailyDays: 14, weeklyDays: 90, monthlyDays: 365, incompleteGraceHours: 6 };
const now = new Date('2026-11-23T12:00:00Z');
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);

function backup(
  backupId: string,
  retainUntil: Date | undefined,
  verified = true,
  lastModified = now,
): BackupRecord {
  return {
    target: 'kc',
    backupId,
    keys: [`kc/${backupId}/dump.pgdump.enc`, `kc/${backupId}/manifest.json`],
    lastModified,
    manifest: retainUntil ? { retainUntil, verified } : undefined,
  };
}

describe('retain-until', () => {
  it('is the scheduled time plus the longest retention of the tiers', () => {
    const at = new Date('2026-11-01T00:00:00Z');
    expect(retainUntilFor(at, ['hourly'], policy).toISOString()).toBe('2026-11-03T00:00:00.000Z');
    expect(retainUntilFor(at, ['hourly', 'daily', 'monthly'], policy).toISOString()).toBe(
      '2027-11-01T00:00:00.000Z',
    );
  });
});

describe('planRetention', () => {
  it('deletes expired backups and keeps the unexpired ones', () => {
    const plan = planRetention({
      backups: [backup('20261120T0100Z', hoursAgo(1)), backup('20261123T1100Z', hoursAgo(-47))],
      snapshots: [],
      policy,
      now,
      failedTargets: [],
    });
    expect(plan.deleteBackups.map((d) => d.id)).toEqual(['20261120T0100Z']);
    expect(plan.deleteBackups[0]?.keys).toHaveLength(2);
    expect(plan.kept).toBe(1);
  });

  it('keeps the newest verified backup even when it has expired', () => {
    const plan = planRetention({
      backups: [backup('20261101T0100Z', hoursAgo(100)), backup('20261102T0100Z', hoursAgo(90))],
      snapshots: [],
      policy,
      now,
      failedTargets: [],
    });
    expect(plan.deleteBackups.map((d) => d.id)).toEqual(['20261101T0100Z']);
  });

  it('expires nothing of a target whose current run failed', () => {
    const plan = planRetention({
      backups: [backup('20261101T0100Z', hoursAgo(100)), backup('20261102T0100Z', hoursAgo(90))],
      snapshots: [
        {
          target: 'kc',
          snapshotId: 's1',
          retainUntil: hoursAgo(5),
          createdAt: hoursAgo(500),
          status: 'available',
        },
      ],
      policy,
      now,
      failedTargets: ['kc'],
    });
    expect(plan.deleteBackups).toEqual([]);
    expect(plan.deleteSnapshots).toEqual([]);
    expect(plan.paused[0]?.reason).toMatch(/failed/);
  });

  it('pauses a target whose newest complete backup failed verification', () => {
    const plan = planRetention({
      backups: [backup('20261101T0100Z', hoursAgo(100)), backup('20261102T0100Z', hoursAgo(90), false)],
      snapshots: [],
      policy,
      now,
      failedTargets: [],
    });
    expect(plan.deleteBackups).toEqual([]);
    expect(plan.paused).toEqual([
      { target: 'kc', reason: 'the newest backup 20261102T0100Z is not verified' },
    ]);
  });

  it('removes an incomplete backup only after the grace period', () => {
    const plan = planRetention({
      backups: [
        backup('20261122T0100Z', hoursAgo(-100)),
        backup('20261123T0100Z', undefined, false, hoursAgo(7)),
        backup('20261123T1100Z', undefined, false, hoursAgo(1)),
      ],
      snapshots: [],
      policy,
      now,
      failedTargets: [],
    });
    expect(plan.deleteBackups).toEqual([
      { target: 'kc', id: '20261123T0100Z', keys: expect.any(Array), reason: 'incomplete' },
    ]);
  });

  it('expires snapshots by their retain-until but keeps the newest available one', () => {
    const snap = (snapshotId: string, retainUntil: Date, status = 'available') => ({
      target: 'kc',
      snapshotId,
      retainUntil,
      createdAt: hoursAgo(1000),
      status,
    });
    const plan = planRetention({
      backups: [],
      snapshots: [
        snap('kc-20261001T0000Z', hoursAgo(10)),
        snap('kc-20261002T0000Z', hoursAgo(5)),
        snap('kc-20261003T0000Z', hoursAgo(1), 'creating'),
      ],
      policy,
      now,
      failedTargets: [],
    });
    expect(plan.deleteSnapshots.map((d) => d.id)).toEqual(['kc-20261001T0000Z']);
  });

  it('warns when the snapshots kept approach the region quota', () => {
    const snapshots = Array.from({ length: 95 }, (_, i) => ({
      target: 'kc',
      snapshotId: `kb-kc-${String(i).padStart(3, '0')}`,
      retainUntil: hoursAgo(-100),
      createdAt: hoursAgo(200 - i),
      status: 'available',
    }));
    const plan = planRetention({
      backups: [],
      snapshots,
      policy: { ...policy, snapshotQuota: 100 },
      now,
      failedTargets: [],
    });
    expect(plan.warnings).toEqual([
      expect.stringContaining("95 manual snapshots remain of the region's quota of 100"),
    ]);
    const roomy = planRetention({
      backups: [],
      snapshots: snapshots.slice(0, 50),
      policy: { ...policy, snapshotQuota: 100 },
      now,
      failedTargets: [],
    });
    expect(roomy.warnings).toEqual([]);
  });
});
