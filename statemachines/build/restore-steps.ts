// Steps the restore drill and the kept recovery share: polling a point-in-time restore until its instance is
// available, what the Keycloak verification returns, and the failure records of an instance that never became
// available or failed its checks.
import { EXECUTION_ID, failureRecord, pollUntil, type States } from './asl.js';

/** Polls checkDrillRestore for the instance that `request` ($.drill or $.recovery) restored into. */
export function pollRestore(options: {
  request: string;
  started: string;
  wait: string;
  check: string;
  onError: string;
  ready: string;
  done: string;
  failed: string;
}): States {
  return pollUntil({
    statusPath: '$.instance.status',
    started: options.started,
    unknownAtStart: 'fail',
    wait: { name: options.wait, seconds: 30 },
    check: {
      name: options.check,
      fn: 'checkDrillRestore',
      payload: {
        'instanceId.$': `${options.request}.instanceId`,
        'requestedAt.$': `${options.request}.requestedAt`,
        'execution.$': EXECUTION_ID,
      },
      select: ['instanceId', 'status', 'observedAt'],
      resultPath: '$.instance',
      onError: options.onError,
    },
    ready: options.ready,
    done: options.done,
    failed: options.failed,
  });
}

/** The restored instance ended in a status other than available. */
export function restoreNotAvailable(options: { step: string; request: string; noun: string; next: string }) {
  return failureRecord({
    step: options.step,
    target: `${options.request}.target`,
    backupId: null,
    error: {
      Error: 'SnapshotFailedError',
      'Cause.$': `States.Format('${options.noun} {} ended in status {}', $.instance.instanceId, $.instance.status)`,
    },
    next: options.next,
  });
}

/** What verifyDrill returns that the machines keep. */
export const VERIFICATION_FIELDS = [
  'passed',
  'failedChecks',
  'summary',
  'checks',
  'keycloakVersion',
  'manifestBackupId',
  'verifiedAt',
];

/** A verification (at `result`) that failed: its summary is the cause, its failed checks travel with it. */
export function verificationFailed(options: {
  step: string;
  target: string;
  result: string;
  backupId: string;
  next: string;
  comment?: string;
}) {
  return failureRecord({
    step: options.step,
    target: options.target,
    backupId: options.backupId,
    error: { Error: 'VerificationFailedError', 'Cause.$': `${options.result}.summary` },
    extra: { 'failedChecks.$': `${options.result}.failedChecks` },
    next: options.next,
    ...(options.comment ? { comment: options.comment } : {}),
  });
}
