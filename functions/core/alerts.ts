// Turns a caught step failure into an alert that names target, step, error and execution.
import type { Alert } from './ports.js';

export interface StepFailure {
  step: string;
  target?: string | null;
  backupId?: string | null;
  execution?: string | null;
  error: { Error?: string; Cause?: unknown };
  failedChecks?: string[];
}

/**
 * Step Functions hands a Lambda error's Cause over as a JSON string ({errorType, errorMessage, trace}); the local
 * executor hands over the message. Either way only the message reaches the alert, never a stack trace.
 */
export function causeMessage(cause: unknown): string {
  if (typeof cause !== 'string') return cause === undefined ? '' : JSON.stringify(cause);
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (parsed && typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // not JSON: the cause is the message itself
  }
  return cause;
}

/**
 * The steps that check a request before anything starts, and the errors with which they refuse one: the backup's
 * plan, the drill's validation and the recovery's start (which checks name, target and time before it restores).
 */
const CHECKING_STEPS = new Set(['plan', 'drill-validate', 'recovery-start']);
const REFUSALS = new Set(['InvalidInputError', 'RestoreWindowError']);

/**
 * A request refused before anything started (a malformed time, a time outside the restorable window) is the
 * requester's to fix, told by the failed execution itself: recorded, not paged. Everything else pages.
 */
export function pagesOperator(failure: StepFailure): boolean {
  return !(CHECKING_STEPS.has(failure.step) && REFUSALS.has(failure.error.Error ?? ''));
}

export function alertFor(failure: StepFailure): Alert {
  const error = failure.error.Error ?? 'UnknownError';
  const where = failure.target ? `${failure.target}: ` : '';
  const checks = failure.failedChecks?.length ? ` (${failure.failedChecks.join(', ')})` : '';
  return {
    subject: `keycloak-backup ${where}${failure.step} failed: ${error}${checks}`,
    target: failure.target ?? undefined,
    step: failure.step,
    error,
    cause: causeMessage(failure.error.Cause),
    execution: failure.execution ?? undefined,
    failedChecks: failure.failedChecks,
  };
}

/**
 * A manifest that cannot be read or trusted, found by retention: nobody may restore or expire that backup until a
 * person looks, so it is said (every run while it lasts) with the object's bucket and key.
 */
export function damagedManifestAlert(
  damaged: { target: string; backupId: string; bucket: string; key: string; error: string; problem: string },
  execution?: string | null,
): Alert {
  return {
    subject: `keycloak-backup ${damaged.target}: damaged manifest ${damaged.backupId} in ${damaged.bucket}: ${damaged.error}`,
    target: damaged.target,
    step: 'retention',
    error: damaged.error,
    cause: `manifest s3://${damaged.bucket}/${damaged.key} is left in place and counts for nothing (not restored, not expired, not the newest verified): ${damaged.problem}`,
    execution: execution ?? undefined,
  };
}

/**
 * A warning from a target's dump step that succeeded (its size against the previous backup's): the operator is told,
 * as a warning, since the backup may hold another database's data or a database that lost most of its rows.
 */
export function dumpSizeWarningAlert(
  dump: { target: string; backupId: string; execution?: string | null },
  warning: string,
): Alert {
  return {
    subject: `keycloak-backup ${dump.target}: warning: ${dump.backupId} dump under half the previous size`,
    target: dump.target,
    step: 'dump',
    error: 'DumpSizeWarning',
    cause: `${warning}. The backup was made and is verified as usual; if this database is not the one ${dump.target} should hold, back it up under a target of its own`,
    execution: dump.execution ?? undefined,
    severity: 'warning',
  };
}

/** Whether the alert is a failure (pages), a warning (looked at) or a notice; the SNS message attribute `severity`. */
export function severityOf(alert: Alert): 'failure' | 'warning' | 'notice' {
  return alert.severity ?? 'failure';
}

const SEVERITY_LINES = {
  warning: 'severity:  warning (nothing failed; it needs a look)',
  notice: 'severity:  notice (nothing failed; for information)',
} as const;

/** The alert as plain text, for e-mail bodies and the console. */
export function formatAlert(alert: Alert): string {
  const lines = [
    alert.subject,
    '',
    `target:    ${alert.target ?? '(all)'}`,
    `step:      ${alert.step}`,
    `error:     ${alert.error}`,
    `cause:     ${alert.cause}`,
    `execution: ${alert.execution ?? '(unknown)'}`,
  ];
  if (alert.severity) lines.push(SEVERITY_LINES[alert.severity]);
  if (alert.failedChecks?.length) lines.push(`failed checks: ${alert.failedChecks.join(', ')}`);
  if (alert.link) lines.push(`console:   ${alert.link}`);
  return lines.join('\n');
}
