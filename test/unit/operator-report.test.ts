// The operator report's model: built from what the buckets hold (in-memory stores), no I/O.
import { describe, expect, it } from 'vitest';
import { drillReportKey, runReportKey } from '../../functions/core/layout.js';
import {
  buildOperatorReport,
  type OperatorReport,
  readReportRecords,
} from '../../functions/core/operator-report.js';
import { RUN_REPORT_VERSION } from '../../functions/core/run-report.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import {
  FIXTURE_ENVELOPE,
  putBackup,
  type SampleBackup,
  sampleDrillReport,
  sampleManifest,
} from '../support/report-fixtures.js';

const now = new Date('2026-11-23T12:30:00Z');
const policy = { hourlyHours: 48, dailyDays: 14, weeklyDays: 90, monthlyDays: 365, incompleteGraceHours: 6 };
const objectives = { rpoSeconds: 7200, rtoSeconds: 3600 };

async function reportOf(
  backups: SampleBackup[],
  setup: (stores: { primary: MemoryObjectStore; dr: MemoryObjectStore }) => Promise<void> = async () => {},
): Promise<OperatorReport> {
  const primary = new MemoryObjectStore({ bucket: 'kb-primary', region: 'eu-west-1' });
  const dr = new MemoryObjectStore({ bucket: 'kb-dr', region: 'eu-central-1' });
  for (const backup of backups) {
    const manifest = sampleManifest(backup);
    await putBackup(primary, manifest);
    if ((backup.copies ?? ['eu-central-1']).length > 0) await putBackup(dr, manifest);
  }
  await setup({ primary, dr });
  const targets = await readReportRecords({ primary, dr }, FIXTURE_ENVELOPE, ['keycloak']);
  return buildOperatorReport({
    now,
    policy,
    objectives,
    regions: { primary: 'eu-west-1', dr: 'eu-central-1' },
    targets,
  });
}

describe('operator report', () => {
  it('counts restore points per tier with each tier horizon and when its oldest point passes it', async () => {
    const report = await reportOf([
      { backupId: '20261122T0000Z', tiers: ['hourly', 'daily', 'weekly'] },
      { backupId: '20261123T0000Z', tiers: ['hourly', 'daily'] },
      { backupId: '20261123T1100Z' },
      { backupId: '20261123T1200Z' },
    ]);
    const [target] = report.targets;
    const tier = (name: string) => target?.tiers.find((t) => t.tier === name);
    expect(tier('hourly')).toMatchObject({
      restorePoints: 4,
      retentionSeconds: 48 * 3600,
      horizon: '2026-11-21T12:30:00.000Z',
      oldest: '2026-11-22T00:00:00.000Z',
      nextExpiry: { backupId: '20261122T0000Z', at: '2026-11-24T00:00:00.000Z' },
    });
    expect(tier('daily')).toMatchObject({
      restorePoints: 2,
      nextExpiry: { backupId: '20261122T0000Z', at: '2026-12-06T00:00:00.000Z' },
    });
    expect(tier('weekly')?.restorePoints).toBe(1);
    expect(tier('monthly')).toMatchObject({ restorePoints: 0, oldest: null, nextExpiry: null });
  });

  it('measures the RPO from the newest verified backup, not a newer one whose verification failed', async () => {
    const report = await reportOf([
      { backupId: '20261123T1000Z' },
      { backupId: '20261123T1100Z' },
      { backupId: '20261123T1200Z', verified: false },
    ]);
    const rpo = report.targets[0]?.rpo;
    // 11:00's dump started at 11:00:05; now is 12:30:00
    expect(rpo).toMatchObject({
      newestVerified: { backupId: '20261123T1100Z' },
      ageSeconds: 5395,
      objectiveSeconds: 7200,
      met: true,
    });
    const older = await reportOf([
      { backupId: '20261123T0900Z' },
      { backupId: '20261123T1200Z', verified: null },
    ]);
    expect(older.targets[0]?.rpo).toMatchObject({ ageSeconds: 12595, met: false });
  });

  it('draws the backup age as a sawtooth that drops when a newer backup is verified and ends now', async () => {
    const report = await reportOf([{ backupId: '20261123T1100Z' }, { backupId: '20261123T1200Z' }]);
    // verified 12 + 10 s after each dump started (sample: 12 s dump)
    expect(report.targets[0]?.backupAge).toEqual([
      ['2026-11-23T11:00:27.000Z', 22],
      ['2026-11-23T12:00:27.000Z', 3622],
      ['2026-11-23T12:00:27.000Z', 22],
      ['2026-11-23T12:30:00.000Z', 1795],
    ]);
  });

  it('shows per backup its verification, failed checks, and whether the DR bucket holds a copy', async () => {
    const report = await reportOf(
      [
        { backupId: '20261123T1100Z', tiers: ['hourly'] },
        { backupId: '20261123T1200Z', verified: false, copies: [] },
      ],
      async ({ primary }) => {
        // files of a backup whose manifest was never written
        await primary.putJson('keycloak/2026/11/23/20261123T1300Z/dump.pgdump.enc', {});
      },
    );
    const rows = report.targets[0]?.backups ?? [];
    expect(rows.map((r) => [r.backupId, r.status, r.verified, r.regions.primary, r.regions.dr])).toEqual([
      ['20261123T1100Z', 'complete', true, true, true],
      ['20261123T1200Z', 'complete', false, true, false],
      ['20261123T1300Z', 'incomplete', false, false, false],
    ]);
    expect(rows[0]?.regions.drVerifiedAt).toBe('2026-11-23T11:00:32.000Z');
    expect(rows[1]?.verification).toMatchObject({
      level: 'archive',
      passed: false,
      failedChecks: ['checksum'],
    });
  });

  it('lists failures with their step from run reports and drill reports, oldest first', async () => {
    const report = await reportOf([{ backupId: '20261123T1100Z' }], async ({ primary }) => {
      await primary.putJson(runReportKey('keycloak', '20261123T1200Z'), {
        reportVersion: RUN_REPORT_VERSION,
        backupId: '20261123T1200Z',
        target: 'keycloak',
        tiers: ['hourly'],
        execution: null,
        recordedAt: '2026-11-23T12:05:00Z',
        failures: [{ step: 'copy', error: 'ChecksumMismatchError' }],
      });
      const drill = sampleDrillReport({
        requestedAt: '2026-11-22T03:00:00Z',
        failedStep: 'drill-restore',
        passed: false,
      });
      await primary.putJson(drillReportKey('keycloak', drill.drillId), drill);
      await primary.putJson(drillReportKey('keycloak', 'drill-keycloak-broken'), { not: 'a report' });
    });
    expect(report.targets[0]?.failures).toEqual([
      expect.objectContaining({ source: 'drill', step: 'drill-restore', error: 'RestoreFailedError' }),
      expect.objectContaining({
        source: 'backup',
        id: '20261123T1200Z',
        step: 'copy',
        error: 'ChecksumMismatchError',
      }),
    ]);
    expect(report.targets[0]?.drills).toHaveLength(1);
  });

  it('judges each drill against the RTO and keeps the last one', async () => {
    const report = await reportOf([], async ({ primary }) => {
      for (const drill of [
        sampleDrillReport({ requestedAt: '2026-11-08T03:00:00Z', totalSeconds: 1200 }),
        sampleDrillReport({ requestedAt: '2026-11-15T03:00:00Z', totalSeconds: 4000 }),
        sampleDrillReport({ requestedAt: '2026-11-22T03:00:00Z', passed: false, totalSeconds: 900 }),
      ]) {
        await primary.putJson(drillReportKey('keycloak', drill.drillId), drill);
      }
    });
    const target = report.targets[0];
    expect(target?.drills.map((d) => [d.outcome, d.totalSeconds, d.withinRto, d.failedStep])).toEqual([
      ['passed', 1200, true, null],
      ['passed', 4000, false, null],
      ['failed', 900, true, 'drill-verify'],
    ]);
    expect(target?.rto.lastDrill?.requestedAt).toBe('2026-11-22T03:00:00.000Z');
  });

  it('follows realm keys across backups: a rotated key appears, the old one disappears', async () => {
    const report = await reportOf([
      {
        backupId: '20261123T1000Z',
        keys: { 'master/rsa-generated/a': 'fp-a', 'demo/hmac-generated/h': 'fp-h' },
      },
      {
        backupId: '20261123T1100Z',
        keys: { 'master/rsa-generated/a': 'fp-a', 'demo/hmac-generated/h': 'fp-h' },
      },
      // master's RSA key rotated: a new component, the old one removed
      {
        backupId: '20261123T1200Z',
        keys: { 'master/rsa-generated/b': 'fp-b', 'demo/hmac-generated/h': 'fp-h' },
      },
    ]);
    const target = report.targets[0];
    expect(target?.keys.map((k) => [k.key, k.firstSeen.backupId, k.lastSeen.backupId, k.present])).toEqual([
      ['demo/hmac-generated/h', '20261123T1000Z', '20261123T1200Z', true],
      ['master/rsa-generated/a', '20261123T1000Z', '20261123T1100Z', false],
      ['master/rsa-generated/b', '20261123T1200Z', '20261123T1200Z', true],
    ]);
    expect(target?.keyEvents).toEqual([
      {
        at: '2026-11-23T12:00:00.000Z',
        backupId: '20261123T1200Z',
        kind: 'appeared',
        key: 'master/rsa-generated/b',
        fingerprint: 'fp-b',
      },
      {
        at: '2026-11-23T12:00:00.000Z',
        backupId: '20261123T1200Z',
        kind: 'disappeared',
        key: 'master/rsa-generated/a',
        fingerprint: 'fp-a',
      },
    ]);
  });

  it('reports a configured target that has nothing stored yet, with no restore point and the RPO not met', async () => {
    const report = await reportOf([]);
    expect(report.targets.map((t) => t.target)).toEqual(['keycloak']);
    expect(report.targets[0]?.rpo).toMatchObject({ newestVerified: null, ageSeconds: null, met: false });
    expect(report.targets[0]?.backupAge).toEqual([]);
  });
});

describe('backup age over time', () => {
  it('starts at the first backup verified within the hourly retention, where every run is still stored', async () => {
    const report = await reportOf([
      { backupId: '20261120T0000Z', tiers: ['hourly', 'daily'] },
      { backupId: '20261122T0000Z', tiers: ['hourly', 'daily'] },
      { backupId: '20261123T1200Z' },
    ]);
    // horizon 2026-11-21T12:30: 20 Nov's backup is older, so the series starts with 22 Nov's
    expect(report.targets[0]?.backupAge).toEqual([
      ['2026-11-22T00:00:27.000Z', 22],
      ['2026-11-23T12:00:27.000Z', 129622],
      ['2026-11-23T12:00:27.000Z', 22],
      ['2026-11-23T12:30:00.000Z', 1795],
    ]);
  });
});
