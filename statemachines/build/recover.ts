// The recover machine: a kept point-in-time recovery (`keycloak-backup pitr`) as a workflow. Checks the request,
// restores under the given name (never swept), polls until available, runs the Keycloak checks, records the
// recovery point and time and notifies that it is ready. Started with {drop: name}, it removes one instead.
import { type Definition, EXECUTION_ID, FAILURE, failureRecord, lambdaTask, notifyFailure } from './asl.js';
import {
  pollRestore,
  restoreNotAvailable,
  VERIFICATION_FIELDS,
  verificationFailed,
} from './restore-steps.js';

const recoveryFailure = (step: string) =>
  failureRecord({ step, target: '$.recovery.target', backupId: null, next: 'NotifyRecoveryFailure' });

export const recover: Definition = {
  Comment:
    'keycloak-backup: kept point-in-time recovery. Restores a target to a time under a name, verifies it, records its recovery point and time and notifies when it is ready; it is never swept and is removed only by {drop: name} (keycloak-backup pitr --drop). A failure alerts and leaves what was restored for the operator to inspect or drop.',
  StartAt: 'RecoverOrDrop',
  TimeoutSeconds: 18000,
  States: {
    RecoverOrDrop: {
      Type: 'Choice',
      Choices: [{ Variable: '$.drop', IsPresent: true, Next: 'DropRecovery' }],
      Default: 'PrepareRecovery',
    },
    DropRecovery: lambdaTask({
      fn: 'dropRecovery',
      payload: { 'drop.$': '$.drop', 'execution.$': EXECUTION_ID },
      select: ['name', 'existed', 'droppedAt'],
      resultPath: '$.dropped',
      onError: 'DropFailed',
      next: 'RecoveryDropped',
    }),
    RecoveryDropped: { Type: 'Succeed' },
    DropFailed: failureRecord({
      step: 'recovery-drop',
      target: null,
      backupId: null,
      next: 'NotifyDropFailure',
    }),
    NotifyDropFailure: notifyFailure({ next: 'RecoveryFailed' }),
    PrepareRecovery: {
      Type: 'Pass',
      Comment:
        'keeps the request apart and gives every optional result a null, so later paths always resolve',
      Parameters: {
        'request.$': '$',
        recovery: null,
        instance: null,
        verification: null,
        failure: null,
        caught: null,
      },
      Next: 'StartRecovery',
    },
    StartRecovery: lambdaTask({
      fn: 'startRecovery',
      comment:
        'name, target and time checked against the restorable window (RestoreWindowError says why), then the restore under that name, tagged as a recovery',
      payload: { 'request.$': '$.request', 'execution.$': EXECUTION_ID },
      select: [
        'name',
        'instanceId',
        'target',
        'time',
        'requestedAt',
        'earliest',
        'latest',
        'status',
        'observedAt',
      ],
      resultPath: '$.recovery',
      onError: 'RecoveryRefused',
      next: 'RecoveryInstance',
    }),
    RecoveryRefused: failureRecord({
      step: 'recovery-start',
      target: null,
      backupId: null,
      next: 'NotifyRecoveryFailure',
    }),
    RecoveryInstance: {
      Type: 'Pass',
      Parameters: {
        'instanceId.$': '$.recovery.instanceId',
        'status.$': '$.recovery.status',
        'observedAt.$': '$.recovery.observedAt',
      },
      ResultPath: '$.instance',
      Next: 'RecoveryStarted',
    },
    ...pollRestore({
      request: '$.recovery',
      started: 'RecoveryStarted',
      wait: 'WaitForRecovery',
      check: 'CheckRecovery',
      onError: 'RecoveryRestoreFailed',
      ready: 'RecoveryAvailable',
      done: 'VerifyRecovery',
      failed: 'RecoveryNotAvailable',
    }),
    RecoveryNotAvailable: restoreNotAvailable({
      step: 'recovery-restore',
      request: '$.recovery',
      noun: 'recovery',
      next: 'NotifyRecoveryFailure',
    }),
    RecoveryRestoreFailed: recoveryFailure('recovery-restore'),
    VerifyRecovery: lambdaTask({
      fn: 'verifyDrill',
      comment: 'the Keycloak checks and the comparison with the nearest manifest, as a drill runs them',
      payload: {
        'target.$': '$.recovery.target',
        'drillId.$': '$.recovery.name',
        'instanceId.$': '$.recovery.instanceId',
        'time.$': '$.recovery.time',
        'requestedAt.$': '$.recovery.requestedAt',
        'execution.$': EXECUTION_ID,
      },
      select: VERIFICATION_FIELDS,
      resultPath: '$.verification',
      onError: 'VerifyRecoveryFailed',
      next: 'RecordRecovery',
    }),
    VerifyRecoveryFailed: recoveryFailure('recovery-verify'),
    RecordRecovery: lambdaTask({
      fn: 'recordRecovery',
      comment:
        'recovery report (recovery point, recovery time, checks) beside the backups; notifies that it is ready',
      payload: {
        'recovery.$': '$.recovery',
        'instance.$': '$.instance',
        'verification.$': '$.verification',
        'execution.$': EXECUTION_ID,
      },
      select: ['reportKey', 'outcome', 'recoveryPoint', 'recoverySeconds', 'totalSeconds'],
      resultPath: '$.report',
      onError: 'RecordRecoveryFailed',
      next: 'RecoveryChecked',
    }),
    RecordRecoveryFailed: recoveryFailure('recovery-record'),
    RecoveryChecked: {
      Type: 'Choice',
      Choices: [{ Variable: '$.verification.passed', BooleanEquals: true, Next: 'RecoveryReady' }],
      Default: 'RecoveryVerificationFailed',
    },
    RecoveryReady: { Type: 'Succeed' },
    RecoveryVerificationFailed: verificationFailed({
      step: 'recovery-verify',
      target: '$.recovery.target',
      result: '$.verification',
      backupId: '$.verification.manifestBackupId',
      next: 'RecoveryFailed',
      comment: 'recordRecovery already notified with the failed checks; the instance is kept for inspection',
    }),
    NotifyRecoveryFailure: notifyFailure({ next: 'RecoveryFailed' }),
    RecoveryFailed: {
      Type: 'Fail',
      Comment:
        "the failure's error name and cause; an alert was sent, except for a request refused at the start (recorded here, not paged); what was restored is kept until dropped",
      ErrorPath: `${FAILURE}.error.Error`,
      CausePath: `${FAILURE}.error.Cause`,
    },
  },
};
