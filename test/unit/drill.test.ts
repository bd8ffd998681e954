import { describe, expect, it } from 'vitest';
import {
  assertRestorable,
  buildDrillReport,
  candidateBackupIds,
  drillIdFor,
  drillMetricsEmf,
  drillReportSchema,
  drillsToSweep,
  effectiveRestoreTime,
  failedCheckNames,
  isDrillId,
  nearestManifest,
  parseDrillRequest,
  recoveryTimes,
  restoreTimeProblem,
} from '../../functions/core/drill.js';
import { InvalidInputError, RestoreWindowError } from '../../functions/core/errors.js';
import type { DrillInstance } from '../../functions/core/ports.js';

const now = new Date('2026-11-23T12:00:00Z');
const window = { earliest: new Date('2026-11-20T00:00:00Z'), latest: new Date('2026-11-23T11:55:00Z') };
const rules = { targets: ['keycloak', 'other'], maxMinutes: 180 };

describe('parseDrillRequest', () => {
  it('defaults to the first target, the latest time and keeping nothing (the weekly schedule sends {})', () => {
    expect(parseDrillRequest({}, rules)).toEqual({ target: 'keycloak', time: 'latest', keepMinutes: 0 });
    expect(parseDrillRequest(undefined, rules)).toEqual({
      target: 'keycloak',
      time: 'latest',
      keepMinutes: 0,
    });
  });

  it('reads an ISO time with a zone, a target and minutes to keep', () => {
    const request = parseDrillRequest(
      { target: 'other', time: '2026-11-22T10:00:00+01:00', keepMinutes: 15 },
      rules,
    );
    expect(request.target).toBe('other');
    expect(request.time).toEqual(new Date('2026-11-22T09:00:00Z'));
    expect(request.keepMinutes).toBe(15);
  });

  it('refuses a time without a zone, an unknown target, unknown keys and keeping past the sweep limit', () => {
    expect(() => parseDrillRequest({ time: '2026-11-22T10:00:00' }, rules)).toThrow(InvalidInputError);
    expect(() => parseDrillRequest({ target: 'nope' }, rules)).toThrow(/unknown target "nope"/);
    expect(() => parseDrillRequest({ tim: 'latest' }, rules)).toThrow(InvalidInputError);
    expect(() => parseDrillRequest({ keepMinutes: 180 }, rules)).toThrow(/not below the drill time limit/);
    expect(() => parseDrillRequest({ keepMinutes: -1 }, rules)).toThrow(InvalidInputError);
  });
});

describe('drill ids', () => {
  it('are built from the target and the request time to the second, in lower case', () => {
    const id = drillIdFor('keycloak', new Date('2026-11-22T23:05:09.700Z'));
    expect(id).toBe('drill-keycloak-20261122t230509');
    expect(isDrillId(id)).toBe(true);
  });

  it('refuse a target too long for an RDS identifier', () => {
    expect(() => drillIdFor('x'.repeat(42), now)).toThrow(InvalidInputError);
    expect(drillIdFor('x'.repeat(41), now)).toHaveLength(63);
  });

  it('do not match instances the pipeline did not name', () => {
    expect(isDrillId('keycloak-prod')).toBe(false);
    expect(isDrillId('drill-keycloak')).toBe(false);
  });
});

describe('restore window', () => {
  it('accepts latest and any time inside the window, ends included', () => {
    expect(restoreTimeProblem('latest', window, now)).toBeUndefined();
    expect(restoreTimeProblem(window.earliest, window, now)).toBeUndefined();
    expect(restoreTimeProblem(window.latest, window, now)).toBeUndefined();
    expect(restoreTimeProblem(new Date('2026-11-21T00:00:00Z'), window, now)).toBeUndefined();
  });

  it('says the earliest restorable time when asked for a time before it', () => {
    expect(restoreTimeProblem(new Date('2026-11-19T23:59:59Z'), window, now)).toBe(
      'restore time 2026-11-19T23:59:59.000Z is before the earliest restorable time 2026-11-20T00:00:00.000Z',
    );
  });

  it('says a time in the future is in the future, not merely late', () => {
    expect(restoreTimeProblem(new Date('2026-11-23T12:00:01Z'), window, now)).toBe(
      'restore time 2026-11-23T12:00:01.000Z is in the future (now is 2026-11-23T12:00:00.000Z)',
    );
  });

  it('says the latest restorable time when asked for a time after it', () => {
    expect(restoreTimeProblem(new Date('2026-11-23T11:58:00Z'), window, now)).toBe(
      'restore time 2026-11-23T11:58:00.000Z is after the latest restorable time 2026-11-23T11:55:00.000Z',
    );
  });

  it('throws RestoreWindowError with the reason and a hint naming the window', () => {
    try {
      assertRestorable(new Date('2026-11-01T00:00:00Z'), window, now);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(RestoreWindowError);
      expect((error as RestoreWindowError).message).toMatch(/before the earliest restorable time/);
      expect((error as RestoreWindowError).hint).toBe('choose a time at or after 2026-11-20T00:00:00.000Z');
    }
    expect(() => assertRestorable(new Date('2026-11-21T00:00:00Z'), window, now)).not.toThrow();
  });
});

describe('nearest manifest', () => {
  const manifests = [
    { backupId: '20261122T2300Z', startedAt: '2026-11-22T23:00:05Z' },
    { backupId: '20261123T0000Z', startedAt: '2026-11-23T00:00:04Z' },
    { backupId: '20261123T0100Z', startedAt: '2026-11-23T01:00:07Z' },
  ];

  it('is the newest backup whose counts were taken no later than the restore time', () => {
    expect(nearestManifest(manifests, new Date('2026-11-23T00:30:00Z'))?.backupId).toBe('20261123T0000Z');
    expect(nearestManifest(manifests, new Date('2026-11-23T05:00:00Z'))?.backupId).toBe('20261123T0100Z');
  });

  it('skips a backup scheduled before the restore time whose dump started after it', () => {
    expect(nearestManifest(manifests, new Date('2026-11-23T01:00:03Z'))?.backupId).toBe('20261123T0000Z');
  });

  it('is undefined when every backup is newer than the restore time', () => {
    expect(nearestManifest(manifests, new Date('2026-11-22T22:00:00Z'))).toBeUndefined();
  });

  it('reads candidates newest first, only those scheduled by the restore time', () => {
    expect(
      candidateBackupIds(
        ['20261123T0000Z', '20261123T0100Z', '20261122T2300Z'],
        new Date('2026-11-23T00:30:00Z'),
      ),
    ).toEqual(['20261123T0000Z', '20261122T2300Z']);
  });

  it('compares a latest restore with the backups before the request', () => {
    const requestedAt = new Date('2026-11-23T00:30:00Z');
    expect(effectiveRestoreTime('latest', requestedAt)).toBe(requestedAt);
    expect(effectiveRestoreTime(now, requestedAt)).toBe(now);
  });
});

describe('recovery times', () => {
  it('measure request to available, available to verified, and request to verified', () => {
    expect(
      recoveryTimes({
        requestedAt: new Date('2026-11-23T12:00:00.000Z'),
        availableAt: new Date('2026-11-23T12:00:42.250Z'),
        verifiedAt: new Date('2026-11-23T12:00:45.000Z'),
      }),
    ).toEqual({ recoverySeconds: 42.25, verificationSeconds: 2.75, totalSeconds: 45 });
  });

  it('are null for the moments a failed drill never reached', () => {
    expect(recoveryTimes({ requestedAt: now })).toEqual({
      recoverySeconds: null,
      verificationSeconds: null,
      totalSeconds: null,
    });
  });

  it('refuse moments out of order', () => {
    expect(() => recoveryTimes({ requestedAt: now, availableAt: new Date(now.getTime() - 1) })).toThrow(
      InvalidInputError,
    );
  });
});

describe('sweeper', () => {
  const drill = (instanceId: string, minutesAgo: number, status: DrillInstance['status'] = 'available') => ({
    instanceId,
    target: 'keycloak',
    status,
    createdAt: new Date(now.getTime() - minutesAgo * 60_000),
  });

  it('sweeps drills older than the limit and keeps younger ones', () => {
    const old = drill('drill-keycloak-20261123t080000', 240);
    const young = drill('drill-keycloak-20261123t113000', 30);
    expect(drillsToSweep([old, young], now, 180)).toEqual([old]);
  });

  it('leaves instances not named as drills, and those already going away', () => {
    expect(
      drillsToSweep(
        [
          drill('keycloak-prod', 10_000),
          drill('drill-keycloak-20261120t080000', 10_000, 'deleting'),
          drill('drill-keycloak-20261120t090000', 10_000, 'gone'),
        ],
        now,
        180,
      ),
    ).toEqual([]);
  });

  it('sweeps a drill whose restore failed or never finished', () => {
    const stuck = drill('drill-keycloak-20261120t080000', 500, 'creating');
    const failed = drill('drill-keycloak-20261120t090000', 500, 'failed');
    expect(drillsToSweep([stuck, failed], now, 180)).toEqual([stuck, failed]);
  });
});

describe('drill report', () => {
  const base = {
    drillId: 'drill-keycloak-20261123t120000',
    target: 'keycloak',
    instanceId: 'drill-keycloak-20261123t120000',
    execution: 'exec-1',
    time: 'latest' as const,
    keepMinutes: 0,
    requestedAt: now,
    availableAt: new Date(now.getTime() + 30_000),
    verifiedAt: new Date(now.getTime() + 33_000),
    recordedAt: new Date(now.getTime() + 40_000),
    tornDown: true,
  };
  const checks = [
    { name: 'master-realm', status: 'pass' as const, detail: '1 enabled master realm' },
    { name: 'counts-near', status: 'fail' as const, detail: 'user_entity 5 vs 9', class: 'near' as const },
    { name: 'sessions', status: 'warn' as const, detail: 'churn', class: 'churn' as const },
  ];

  it('passes when every check passed and the instance was torn down', () => {
    const report = buildDrillReport({
      ...base,
      verification: {
        passed: true,
        keycloakVersion: '26.0.8',
        manifestBackupId: '20261123T1100Z',
        checks: [checks[0]!],
        failedChecks: [],
      },
    });
    expect(report.outcome).toBe('passed');
    expect(report.recovery).toEqual({ recoverySeconds: 30, verificationSeconds: 3, totalSeconds: 33 });
    expect(drillReportSchema.parse(JSON.parse(JSON.stringify(report)))).toEqual(report);
  });

  it('fails when a check failed, naming the failing checks only', () => {
    const verification = {
      passed: false,
      keycloakVersion: '26.0.8',
      manifestBackupId: null,
      checks,
      failedChecks: failedCheckNames(checks),
    };
    expect(verification.failedChecks).toEqual(['counts-near']);
    expect(buildDrillReport({ ...base, verification }).outcome).toBe('failed');
  });

  it('fails when a step failed before verification, with no recovery time', () => {
    const report = buildDrillReport({
      ...base,
      availableAt: undefined,
      verifiedAt: undefined,
      failure: { step: 'restore', error: 'RestoreFailedError', cause: 'recovery ended early' },
    });
    expect(report.outcome).toBe('failed');
    expect(report.recovery.recoverySeconds).toBeNull();
    expect(report.verification).toBeNull();
  });

  it('becomes an EMF line with DrillsPassed and RecoveryTimeSeconds per target', () => {
    const report = buildDrillReport({
      ...base,
      verification: {
        passed: true,
        keycloakVersion: null,
        manifestBackupId: null,
        checks: [],
        failedChecks: [],
      },
    });
    const records = drillMetricsEmf(report, now);
    expect(records).toHaveLength(1);
    const emf = records[0]!;
    const directive = emf._aws.CloudWatchMetrics[0]!;
    expect(directive.Namespace).toBe('KeycloakBackup');
    expect(directive.Dimensions).toEqual([['Target']]);
    expect(directive.Metrics.map((m) => m.Name)).toEqual([
      'DrillsPassed',
      'DrillsFailed',
      'RecoveryTimeSeconds',
      'DrillTotalSeconds',
    ]);
    expect(emf).toMatchObject({
      Target: 'keycloak',
      DrillsPassed: 1,
      DrillsFailed: 0,
      RecoveryTimeSeconds: 30,
    });
  });

  it('leaves RecoveryTimeSeconds out of the metrics of a drill that never became available', () => {
    const report = buildDrillReport({
      ...base,
      availableAt: undefined,
      verifiedAt: undefined,
      failure: { step: 'restore', error: 'X', cause: 'y' },
    });
    const [emf, stepFailure] = drillMetricsEmf(report, now);
    expect(emf).toMatchObject({ DrillsPassed: 0, DrillsFailed: 1 });
    expect(emf).not.toHaveProperty('RecoveryTimeSeconds');
    expect(stepFailure).toMatchObject({ Target: 'keycloak', Step: 'restore', StepFailures: 1 });
    expect(stepFailure?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['Target', 'Step']]);
  });

  it('counts a drill whose verification failed as a failure of the drill-verify step', () => {
    const report = buildDrillReport({
      ...base,
      verification: {
        passed: false,
        keycloakVersion: null,
        manifestBackupId: null,
        checks: [{ name: 'signing-keys', status: 'fail', detail: 'none' }],
        failedChecks: ['signing-keys'],
      },
    });
    const records = drillMetricsEmf(report, now);
    expect(records.map((r) => r.Step)).toEqual([undefined, 'drill-verify']);
  });
});
