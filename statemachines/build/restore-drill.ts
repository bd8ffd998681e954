// The restore-drill machine: sweep, validate, point-in-time restore into a drill instance (poll until available),
// Keycloak verification against the nearest manifest, the nearest dump from the DR bucket with the DR key restored
// beside it, teardown on every path, the drill report, an alert on failure.
import { type Definition, EXECUTION_ID, FAILURE, failureRecord, lambdaTask, notifyFailure } from './asl.js';
import {
  pollRestore,
  restoreNotAvailable,
  VERIFICATION_FIELDS,
  verificationFailed,
} from './restore-steps.js';

const drillFailure = (step: string, next: string, comment?: string) =>
  failureRecord({ step, target: '$.drill.target', backupId: null, next, ...(comment ? { comment } : {}) });

const teardown = (options: {
  comment?: string;
  onError: { next: string; resultPath: string } | string;
  next: string;
}) =>
  lambdaTask({
    fn: 'teardownDrill',
    ...(options.comment ? { comment: options.comment } : {}),
    payload: { 'instanceId.$': '$.drill.instanceId', 'execution.$': EXECUTION_ID },
    select: ['tornDownAt'],
    resultPath: '$.teardown',
    onError: options.onError,
    next: options.next,
  });

/** What the two verifications are told: the drill, its instance, and the moment it restored to. */
const drillTarget = {
  'target.$': '$.drill.target',
  'drillId.$': '$.drill.drillId',
  'instanceId.$': '$.drill.instanceId',
  'time.$': '$.drill.time',
  'requestedAt.$': '$.drill.requestedAt',
  'execution.$': EXECUTION_ID,
};

const drillRecord = (failure: string | null) => ({
  'drill.$': '$.drill',
  'instance.$': '$.instance',
  'verification.$': '$.verification',
  'drDump.$': '$.drDump',
  'teardown.$': '$.teardown',
  ...(failure === null ? { failure: null } : { 'failure.$': failure }),
  'execution.$': EXECUTION_ID,
});

export const restoreDrill: Definition = {
  Comment:
    'keycloak-backup: restore drill. Point-in-time restore of a target into a disposable drill instance, Keycloak verification against the nearest manifest, the nearest dump restored from the DR bucket with the DR key into a scratch database on the drill instance, measured recovery time, teardown on every path. Started weekly by the schedule ({} or {target}) and by hand ({target, time: ISO 8601 | latest, keepMinutes}).',
  StartAt: 'PrepareDrill',
  TimeoutSeconds: 18000,
  States: {
    PrepareDrill: {
      Type: 'Pass',
      Comment:
        'keeps the request apart and gives every optional result a null, so later paths always resolve',
      Parameters: {
        'request.$': '$',
        drill: null,
        instance: null,
        verification: null,
        drDump: null,
        teardown: null,
        failure: null,
        caught: null,
        teardownError: null,
      },
      Next: 'SweepDrills',
    },
    SweepDrills: lambdaTask({
      fn: 'sweepDrills',
      comment:
        'tears down drill instances older than KB_DRILL_MAX_MINUTES (left by a drill that could not clean up)',
      payload: { 'execution.$': EXECUTION_ID },
      select: ['swept'],
      resultPath: '$.sweep',
      onError: 'SweepFailed',
      next: 'ValidateDrill',
    }),
    SweepFailed: failureRecord({
      step: 'drill-sweep',
      target: null,
      backupId: null,
      comment: 'a failed sweep is alerted but does not stop this drill',
      next: 'NotifySweepFailure',
    }),
    NotifySweepFailure: notifyFailure({ next: 'SweepFailureNoted' }),
    SweepFailureNoted: { Type: 'Pass', Result: null, ResultPath: FAILURE, Next: 'ValidateDrill' },
    ValidateDrill: lambdaTask({
      fn: 'validateDrill',
      comment:
        'target, time (ISO 8601 or latest) and keep-minutes checked against the restorable window: RestoreWindowError says exactly why',
      payload: { 'request.$': '$.request', 'execution.$': EXECUTION_ID },
      select: [
        'drillId',
        'instanceId',
        'target',
        'time',
        'keepMinutes',
        'keepSeconds',
        'requestedAt',
        'earliest',
        'latest',
      ],
      resultPath: '$.drill',
      onError: 'DrillRefused',
      next: 'StartDrillRestore',
    }),
    DrillRefused: failureRecord({
      step: 'drill-validate',
      target: null,
      backupId: null,
      comment: 'nothing was started: alert and stop',
      next: 'NotifyDrillRefused',
    }),
    NotifyDrillRefused: notifyFailure({ next: 'DrillRefusedFail' }),
    DrillRefusedFail: {
      Type: 'Fail',
      Comment: "the refusal's own error name and reason",
      ErrorPath: `${FAILURE}.error.Error`,
      CausePath: `${FAILURE}.error.Cause`,
    },
    StartDrillRestore: lambdaTask({
      fn: 'startDrillRestore',
      comment:
        "point-in-time restore into a drill instance (AWS: not public, in the pipeline's subnets, tagged; local: promoted copy on a free port)",
      payload: {
        'target.$': '$.drill.target',
        'drillId.$': '$.drill.drillId',
        'instanceId.$': '$.drill.instanceId',
        'time.$': '$.drill.time',
        'execution.$': EXECUTION_ID,
      },
      select: ['instanceId', 'status', 'observedAt'],
      resultPath: '$.instance',
      onError: 'DrillRestoreFailed',
      next: 'DrillRestoreStarted',
    }),
    ...pollRestore({
      request: '$.drill',
      started: 'DrillRestoreStarted',
      wait: 'WaitForDrillRestore',
      check: 'CheckDrillRestore',
      onError: 'DrillRestoreFailed',
      ready: 'DrillRestoreReady',
      done: 'VerifyDrill',
      failed: 'DrillRestoreNotAvailable',
    }),
    DrillRestoreNotAvailable: restoreNotAvailable({
      step: 'drill-restore',
      request: '$.drill',
      noun: 'drill instance',
      next: 'TeardownAfterFailure',
    }),
    DrillRestoreFailed: drillFailure('drill-restore', 'TeardownAfterFailure'),
    VerifyDrill: lambdaTask({
      fn: 'verifyDrill',
      comment:
        'Keycloak health checks and counts against the nearest manifest (exact/near/churn); a failed check is a result, not an error, so teardown still runs',
      payload: drillTarget,
      select: VERIFICATION_FIELDS,
      resultPath: '$.verification',
      onError: 'VerifyDrillFailed',
      next: 'VerifyDrillDump',
    }),
    VerifyDrillFailed: drillFailure('drill-verify', 'TeardownAfterFailure'),
    VerifyDrillDump: lambdaTask({
      fn: 'verifyDrillDump',
      comment:
        'the second recovery: the nearest dump from the DR bucket, decrypted with the DR key alone, restored into a scratch database on the drill instance and checked against its manifest; too large for one Lambda is reported, not skipped',
      payload: drillTarget,
      select: [
        'status',
        'passed',
        'backupId',
        'region',
        'bucket',
        'keyIds',
        'plainBytes',
        'restoreSeconds',
        'checks',
        'failedChecks',
        'summary',
      ],
      resultPath: '$.drDump',
      onError: 'VerifyDrillDumpFailed',
      next: 'KeepForInspection',
    }),
    VerifyDrillDumpFailed: drillFailure('drill-dr-dump', 'TeardownAfterFailure'),
    KeepForInspection: {
      Type: 'Choice',
      Choices: [{ Variable: '$.drill.keepSeconds', NumericGreaterThan: 0, Next: 'KeepDrillForInspection' }],
      Default: 'TeardownDrill',
    },
    KeepDrillForInspection: {
      Type: 'Wait',
      Comment: 'keep-minutes asked for by the operator; always below the sweep limit',
      SecondsPath: '$.drill.keepSeconds',
      Next: 'TeardownDrill',
    },
    TeardownDrill: teardown({ onError: 'TeardownDrillFailed', next: 'RecordDrill' }),
    TeardownDrillFailed: drillFailure(
      'drill-teardown',
      'NotifyTeardownFailure',
      'the sweeper deletes it later; say so now',
    ),
    NotifyTeardownFailure: notifyFailure({ next: 'DrillFailed' }),
    RecordDrill: lambdaTask({
      fn: 'recordDrill',
      comment: 'drill report JSON beside the backups; DrillsPassed and RecoveryTimeSeconds as EMF metrics',
      payload: drillRecord(null),
      select: ['reportKey', 'outcome', 'recoverySeconds', 'totalSeconds'],
      resultPath: '$.report',
      onError: 'RecordDrillFailed',
      next: 'DrillPassed',
    }),
    RecordDrillFailed: drillFailure('drill-record', 'NotifyRecordFailure'),
    NotifyRecordFailure: notifyFailure({ next: 'DrillFailed' }),
    DrillPassed: {
      Type: 'Choice',
      Choices: [
        {
          And: [
            { Variable: '$.verification.passed', BooleanEquals: true },
            { Variable: '$.drDump.passed', BooleanEquals: true },
          ],
          Next: 'DrillSucceeded',
        },
        { Variable: '$.verification.passed', BooleanEquals: true, Next: 'DrDumpVerificationFailed' },
      ],
      Default: 'VerificationFailed',
    },
    DrDumpVerificationFailed: verificationFailed({
      step: 'drill-dr-dump',
      target: '$.drill.target',
      result: '$.drDump',
      backupId: '$.drDump.backupId',
      next: 'NotifyVerificationFailed',
    }),
    DrillSucceeded: { Type: 'Succeed' },
    VerificationFailed: verificationFailed({
      step: 'drill-verify',
      target: '$.drill.target',
      result: '$.verification',
      backupId: '$.verification.manifestBackupId',
      next: 'NotifyVerificationFailed',
    }),
    NotifyVerificationFailed: notifyFailure({ extraFields: ['failedChecks'], next: 'DrillFailed' }),
    TeardownAfterFailure: teardown({
      comment: 'every failure after the restore started comes through here before it alerts',
      onError: { next: 'RecordFailedDrill', resultPath: '$.teardownError' },
      next: 'RecordFailedDrill',
    }),
    RecordFailedDrill: lambdaTask({
      fn: 'recordDrill',
      payload: drillRecord(FAILURE),
      select: ['reportKey', 'outcome'],
      resultPath: '$.report',
      onError: { next: 'NotifyDrillFailure', resultPath: '$.recordError' },
      next: 'NotifyDrillFailure',
    }),
    NotifyDrillFailure: notifyFailure({ next: 'DrillLeftBehind' }),
    DrillLeftBehind: {
      Type: 'Choice',
      Comment: 'Not/IsNull true, because the local executor never matches IsNull false',
      Choices: [{ Not: { Variable: '$.teardownError', IsNull: true }, Next: 'TeardownAfterFailureFailed' }],
      Default: 'DrillFailed',
    },
    TeardownAfterFailureFailed: failureRecord({
      step: 'drill-teardown',
      target: '$.drill.target',
      backupId: null,
      error: '$.teardownError',
      resultPath: '$.leftover',
      comment: 'the instance may still exist: the sweeper deletes it after KB_DRILL_MAX_MINUTES',
      next: 'NotifyTeardownAfterFailure',
    }),
    NotifyTeardownAfterFailure: notifyFailure({ record: '$.leftover', next: 'DrillFailed' }),
    DrillFailed: {
      Type: 'Fail',
      Comment: "the first failure's error name and cause; an alert was sent",
      ErrorPath: `${FAILURE}.error.Error`,
      CausePath: `${FAILURE}.error.Cause`,
    },
  },
};
