// Lambda: writes a kept recovery's report (recovery point, recovery time, checks) beside the backups and tells the
// operator it is ready (or kept with failed checks), through the same notifier as the alerts.
import { z } from 'zod';
import { parseRestoreTime } from '../core/drill.js';
import { checkRecordSchema } from '../core/keycloak/snapshot-schema.js';
import { buildRecoveryReport, recoveryReportKey } from '../core/recovery.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const isoTime = z.string().datetime({ offset: true });

const input = z.object({
  recovery: z.object({
    name: z.string(),
    target: z.string(),
    time: z.string(),
    requestedAt: isoTime,
    latest: isoTime,
  }),
  instance: z.object({ status: z.literal('available'), observedAt: isoTime }),
  verification: z.object({
    passed: z.boolean(),
    failedChecks: z.array(z.string()),
    summary: z.string(),
    checks: z.array(checkRecordSchema),
    keycloakVersion: z.string().nullable(),
    manifestBackupId: z.string().nullable(),
    verifiedAt: isoTime,
  }),
  execution: z.string().nullish(),
});

export function makeHandler(services: Services) {
  return lambdaHandler('recovery-record', input, services.logger, async (state, { logger }) => {
    const { recovery, instance, verification } = state;
    const report = buildRecoveryReport({
      name: recovery.name,
      target: recovery.target,
      execution: state.execution ?? null,
      time: parseRestoreTime(recovery.time),
      latest: new Date(recovery.latest),
      requestedAt: new Date(recovery.requestedAt),
      availableAt: new Date(instance.observedAt),
      verifiedAt: new Date(verification.verifiedAt),
      recordedAt: services.clock.now(),
      verification: {
        passed: verification.passed,
        keycloakVersion: verification.keycloakVersion,
        manifestBackupId: verification.manifestBackupId,
        checks: verification.checks,
        failedChecks: verification.failedChecks,
      },
    });
    const reportKey = recoveryReportKey(recovery.target, recovery.name);
    await services.primaryStore.putJson(reportKey, report);
    const ready = report.outcome === 'ready';
    await services.notifier.publish({
      subject: ready
        ? `keycloak-backup ${recovery.target}: recovery ${recovery.name} is ready (restored to ${report.recoveryPoint})`
        : `keycloak-backup ${recovery.target}: recovery ${recovery.name} is running but failed its checks`,
      target: recovery.target,
      step: 'recovery-ready',
      error: ready ? 'none' : 'VerificationFailedError',
      cause: `${verification.summary}; kept until keycloak-backup pitr --drop ${recovery.name}`,
      execution: state.execution ?? undefined,
      ...(ready ? { severity: 'notice' as const } : { failedChecks: verification.failedChecks }),
    });
    logger.info('recovery recorded', {
      name: recovery.name,
      outcome: report.outcome,
      recoveryPoint: report.recoveryPoint,
      totalSeconds: report.recovery.totalSeconds,
    });
    return {
      reportKey,
      outcome: report.outcome,
      recoveryPoint: report.recoveryPoint,
      recoverySeconds: report.recovery.recoverySeconds,
      totalSeconds: report.recovery.totalSeconds,
    };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
