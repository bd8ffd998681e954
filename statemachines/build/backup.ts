// The hourly backup machine: plan, then per target a dump branch (dump, verify, DR copy) beside a snapshot branch
// (create, poll, copy to DR, poll), then retention and the report.
import {
  CAUGHT,
  type Definition,
  EXECUTION_ID,
  FAILURE,
  failureRecord,
  lambdaTask,
  notifyFailure,
  pollUntil,
  type States,
} from './asl.js';

/** What every Task of a target's branches gets from the Map item. */
const item = {
  'target.$': '$.target',
  'backupId.$': '$.backupId',
  'execution.$': '$.execution',
};

/** A branch step's failure record: the item's own target, backupId and execution. */
function branchFailure(step: string, next: string) {
  return failureRecord({ step, target: '$.target', backupId: '$.backupId', execution: '$.execution', next });
}

/** The end of a failed branch: the map's result says which step failed and with what error name. */
const branchFailed = {
  Type: 'Pass',
  Parameters: { failed: true, 'step.$': `${FAILURE}.step`, 'error.$': `${FAILURE}.error.Error` },
  End: true,
} as const;

const dumpBranch: States = {
  DumpDatabase: lambdaTask({
    fn: 'dumpDatabase',
    comment:
      'pg_dump from the replica, streamed through encryption into a multipart upload; the manifest is written last',
    payload: { ...item, 'scheduledAt.$': '$.scheduledAt', 'tiers.$': '$.tiers' },
    select: ['dumpKey', 'storedBytes', 'warnings'],
    resultPath: '$.dump',
    onErrors: [{ errors: ['BackupHeldError'], next: 'DumpHeld' }],
    onError: 'DumpFailed',
    next: 'VerifyBackup',
  }),
  DumpHeld: {
    Type: 'Pass',
    Comment:
      'another run of the same scheduled time holds the backup id and answers for it: this run stored nothing, verifies and copies nothing, and is recorded, not paged',
    Parameters: { failed: false, held: true, 'cause.$': `${CAUGHT}.Cause` },
    End: true,
  },
  VerifyBackup: lambdaTask({
    fn: 'verifyBackup',
    comment:
      're-read, checksum, decrypt, pg_restore --list; on full tiers a scratch restore and the Keycloak checks',
    payload: { ...item, 'full.$': '$.fullVerify' },
    select: ['passed', 'level'],
    resultPath: '$.verification',
    onError: 'VerifyFailed',
    next: 'CopyBackupToDr',
  }),
  CopyBackupToDr: lambdaTask({
    fn: 'copyBackupToDr',
    payload: item,
    select: ['key', 'region'],
    resultPath: '$.copy',
    onError: 'CopyFailed',
    next: 'DumpBranchDone',
  }),
  DumpBranchDone: {
    Type: 'Pass',
    Parameters: {
      failed: false,
      'dumpKey.$': '$.dump.dumpKey',
      'storedBytes.$': '$.dump.storedBytes',
      // What the operator was warned of (a dump under half the previous size): the CLI says it too.
      'warnings.$': '$.dump.warnings',
      'verification.$': '$.verification.level',
      'drRegion.$': '$.copy.region',
    },
    End: true,
  },
  DumpFailed: branchFailure('dump', 'NotifyDumpBranchFailure'),
  VerifyFailed: branchFailure('verify', 'NotifyDumpBranchFailure'),
  CopyFailed: branchFailure('copy', 'NotifyDumpBranchFailure'),
  NotifyDumpBranchFailure: notifyFailure({ next: 'DumpBranchFailed' }),
  DumpBranchFailed: branchFailed,
};

const snapshotStatus = (snapshot: string, region: 'primary' | 'dr') =>
  ({
    fn: 'checkSnapshot',
    payload: { ...item, 'snapshotId.$': `${snapshot}.snapshotId`, region },
    select: ['snapshotId', 'status'],
    resultPath: snapshot,
  }) as const;

const snapshotEnded = (step: string, what: string, snapshot: string) =>
  failureRecord({
    step,
    target: '$.target',
    backupId: '$.backupId',
    execution: '$.execution',
    error: {
      Error: 'SnapshotFailedError',
      'Cause.$': `States.Format('${what} {} ended in status {}', ${snapshot}.snapshotId, ${snapshot}.status)`,
    },
    next: 'NotifySnapshotBranchFailure',
  });

const snapshotBranch: States = {
  SnapshotWanted: {
    Type: 'Choice',
    Choices: [{ Variable: '$.takeSnapshot', BooleanEquals: true, Next: 'CreateSnapshot' }],
    Default: 'SnapshotSkipped',
  },
  SnapshotSkipped: { Type: 'Pass', Result: { failed: false, skipped: true }, End: true },
  CreateSnapshot: lambdaTask({
    fn: 'createSnapshot',
    payload: { ...item, 'tiers.$': '$.tiers' },
    select: ['snapshotId', 'status'],
    resultPath: '$.snapshot',
    onError: 'SnapshotFailed',
    next: 'SnapshotCreated',
  }),
  ...pollUntil({
    statusPath: '$.snapshot.status',
    started: 'SnapshotCreated',
    unknownAtStart: 'wait',
    wait: { name: 'WaitForSnapshot', seconds: 60 },
    check: { name: 'CheckSnapshot', ...snapshotStatus('$.snapshot', 'primary'), onError: 'SnapshotFailed' },
    ready: 'SnapshotReady',
    done: 'CopySnapshotToDr',
    failed: 'SnapshotNotAvailable',
  }),
  SnapshotNotAvailable: snapshotEnded('snapshot', 'snapshot', '$.snapshot'),
  CopySnapshotToDr: lambdaTask({
    fn: 'copySnapshotToDr',
    payload: { ...item, 'snapshotId.$': '$.snapshot.snapshotId' },
    select: ['snapshotId', 'status'],
    resultPath: '$.drSnapshot',
    onError: 'SnapshotCopyFailed',
    next: 'SnapshotCopyStarted',
  }),
  ...pollUntil({
    statusPath: '$.drSnapshot.status',
    started: 'SnapshotCopyStarted',
    unknownAtStart: 'wait',
    wait: { name: 'WaitForSnapshotCopy', seconds: 120 },
    check: {
      name: 'CheckSnapshotCopy',
      ...snapshotStatus('$.drSnapshot', 'dr'),
      onError: 'SnapshotCopyFailed',
    },
    ready: 'SnapshotCopyReady',
    done: 'SnapshotBranchDone',
    failed: 'SnapshotCopyNotAvailable',
  }),
  SnapshotCopyNotAvailable: snapshotEnded('snapshot-copy', 'snapshot copy', '$.drSnapshot'),
  SnapshotBranchDone: {
    Type: 'Pass',
    Parameters: {
      failed: false,
      'snapshotId.$': '$.snapshot.snapshotId',
      'drSnapshotId.$': '$.drSnapshot.snapshotId',
    },
    End: true,
  },
  SnapshotFailed: branchFailure('snapshot', 'NotifySnapshotBranchFailure'),
  SnapshotCopyFailed: branchFailure('snapshot-copy', 'NotifySnapshotBranchFailure'),
  NotifySnapshotBranchFailure: notifyFailure({ next: 'SnapshotBranchFailed' }),
  SnapshotBranchFailed: branchFailed,
};

export const backup: Definition = {
  Comment:
    'keycloak-backup: hourly backup of every target (dump, verify, DR copy; snapshots on the snapshot tiers), then retention and a report. Executed on AWS by Step Functions and locally by aws-local-stepfunctions with the same handlers.',
  StartAt: 'PlanBackup',
  TimeoutSeconds: 14400,
  States: {
    PlanBackup: lambdaTask({
      fn: 'planBackup',
      comment:
        'backupId and tiers from the scheduled time; preflight: key usable, replica answers, pg_dump new enough',
      payload: { 'request.$': '$', 'execution.$': EXECUTION_ID },
      select: ['backupId', 'scheduledAt', 'tiers', 'targets'],
      resultPath: '$.plan',
      onError: 'PlanFailed',
      next: 'BackupTargets',
    }),
    PlanFailed: failureRecord({ step: 'plan', target: null, backupId: null, next: 'NotifyPlanFailure' }),
    NotifyPlanFailure: notifyFailure({ next: 'BackupFailed' }),
    BackupTargets: {
      Type: 'Map',
      ItemsPath: '$.plan.targets',
      MaxConcurrency: 2,
      ItemSelector: {
        'target.$': '$$.Map.Item.Value.target',
        'takeSnapshot.$': '$$.Map.Item.Value.takeSnapshot',
        'fullVerify.$': '$$.Map.Item.Value.fullVerify',
        'backupId.$': '$.plan.backupId',
        'scheduledAt.$': '$.plan.scheduledAt',
        'tiers.$': '$.plan.tiers',
        'execution.$': EXECUTION_ID,
      },
      ItemProcessor: {
        StartAt: 'BackupTarget',
        States: {
          BackupTarget: {
            Type: 'Parallel',
            Branches: [
              { StartAt: 'DumpDatabase', States: dumpBranch },
              { StartAt: 'SnapshotWanted', States: snapshotBranch },
            ],
            ResultPath: '$.outcome',
            Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: CAUGHT, Next: 'TargetFailed' }],
            Next: 'TargetDone',
          },
          TargetDone: {
            Type: 'Pass',
            Parameters: { 'target.$': '$.target', 'dump.$': '$.outcome[0]', 'snapshot.$': '$.outcome[1]' },
            End: true,
          },
          TargetFailed: {
            Type: 'Pass',
            Parameters: {
              'target.$': '$.target',
              dump: { failed: true, step: 'target' },
              snapshot: { failed: true, step: 'target' },
            },
            End: true,
          },
        },
      },
      ResultPath: '$.results',
      Next: 'ApplyRetention',
    },
    ApplyRetention: lambdaTask({
      fn: 'applyRetention',
      comment: 'expires backups and snapshots in both regions; nothing of a failing target',
      payload: { 'backupId.$': '$.plan.backupId', 'results.$': '$.results', 'execution.$': EXECUTION_ID },
      select: ['deletedBackups', 'deletedSnapshots', 'paused'],
      resultPath: '$.retention',
      onError: 'RetentionFailed',
      next: 'ReportBackup',
    }),
    RetentionFailed: failureRecord({
      step: 'retention',
      target: null,
      backupId: '$.plan.backupId',
      next: 'NotifyRetentionFailure',
    }),
    NotifyRetentionFailure: notifyFailure({ next: 'RetentionNotApplied' }),
    RetentionNotApplied: {
      Type: 'Pass',
      Result: { deletedBackups: 0, deletedSnapshots: 0, paused: [], failed: true },
      ResultPath: '$.retention',
      Next: 'ReportBackup',
    },
    ReportBackup: lambdaTask({
      fn: 'reportBackup',
      payload: {
        'backupId.$': '$.plan.backupId',
        'tiers.$': '$.plan.tiers',
        'results.$': '$.results',
        'retention.$': '$.retention',
        'execution.$': EXECUTION_ID,
      },
      select: ['failedTargets', 'summary'],
      resultPath: '$.report',
      next: 'AnyTargetFailed',
    }),
    AnyTargetFailed: {
      Type: 'Choice',
      Choices: [{ Variable: '$.report.failedTargets', NumericGreaterThan: 0, Next: 'BackupFailed' }],
      Default: 'BackupSucceeded',
    },
    BackupSucceeded: { Type: 'Succeed' },
    BackupFailed: {
      Type: 'Fail',
      Error: 'BackupFailed',
      Cause: 'at least one step failed; an alert was sent for each failure',
    },
  },
};
