// Lambda: writes the drill report beside the backups and emits the drill metrics (EMF) the alarm watches.
import { z } from 'zod';
import { causeMessage } from '../core/alerts.js';
import { buildDrillReport, drDumpResultSchema, drillMetricsEmf, parseRestoreTime } from '../core/drill.js';
import { ObjectNotFoundError } from '../core/errors.js';
import { checkRecordSchema, keyChangeReportSchema } from '../core/keycloak/snapshot-schema.js';
import { drillKeyChangesKey, drillReportKey } from '../core/layout.js';
import { lambdaHandler } from '../platform/handler.js';
import { defaultMetricsSink, type MetricsSink } from '../platform/metrics-sink.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const isoTime = z.string().datetime({ offset: true });

const input = z.object({
  drill: z.object({
    drillId: z.string(),
    instanceId: z.string(),
    target: z.string(),
    time: z.string(),
    keepMinutes: z.number().int().min(0),
    requestedAt: isoTime,
  }),
  instance: z.object({ status: z.string(), observedAt: isoTime }).nullish(),
  verification: z
    .object({
      passed: z.boolean(),
      failedChecks: z.array(z.string()),
      checks: z.array(checkRecordSchema),
      keycloakVersion: z.string().nullable(),
      manifestBackupId: z.string().nullable(),
      verifiedAt: isoTime,
    })
    .nullish(),
  drDump: drDumpResultSchema.nullish(),
  teardown: z.object({ tornDownAt: isoTime }).nullish(),
  failure: z
    .object({ step: z.string(), error: z.object({ Error: z.string().optional(), Cause: z.unknown() }) })
    .nullish(),
  execution: z.string().nullish(),
});

export function makeHandler(services: Services, deps: { metrics?: MetricsSink } = {}) {
  const metrics = deps.metrics ?? defaultMetricsSink(services);
  return lambdaHandler('drill-record', input, services.logger, async (state, { logger }) => {
    const { drill, instance, verification, drDump, teardown, failure } = state;
    const recordedAt = services.clock.now();
    const report = buildDrillReport({
      drillId: drill.drillId,
      target: drill.target,
      instanceId: drill.instanceId,
      execution: state.execution ?? null,
      time: parseRestoreTime(drill.time),
      keepMinutes: drill.keepMinutes,
      requestedAt: new Date(drill.requestedAt),
      availableAt: instance?.status === 'available' ? new Date(instance.observedAt) : undefined,
      verifiedAt: verification ? new Date(verification.verifiedAt) : undefined,
      recordedAt,
      verification: verification
        ? {
            passed: verification.passed,
            keycloakVersion: verification.keycloakVersion,
            manifestBackupId: verification.manifestBackupId,
            checks: verification.checks,
            failedChecks: verification.failedChecks,
          }
        : undefined,
      failure: failure
        ? {
            step: failure.step,
            error: failure.error.Error ?? 'UnknownError',
            cause: causeMessage(failure.error.Cause),
          }
        : undefined,
      keyChanges: await readKeyChanges(services, drill.target, drill.drillId),
      tornDown: Boolean(teardown),
      ...(drDump ? { drDump } : {}),
    });
    const reportKey = drillReportKey(drill.target, drill.drillId);
    await services.primaryStore.putJson(reportKey, report);
    for (const record of drillMetricsEmf(report, recordedAt)) await metrics(record);
    logger.info('drill recorded', {
      drillId: report.drillId,
      outcome: report.outcome,
      recoverySeconds: report.recovery.recoverySeconds,
      totalSeconds: report.recovery.totalSeconds,
    });
    return {
      reportKey,
      outcome: report.outcome,
      recoverySeconds: report.recovery.recoverySeconds,
      totalSeconds: report.recovery.totalSeconds,
    };
  });
}

/** The key changes the verification wrote; absent when the drill did not get that far. */
async function readKeyChanges(services: Services, target: string, drillId: string) {
  let stored: unknown;
  try {
    stored = await services.primaryStore.getJson(drillKeyChangesKey(target, drillId));
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
  const parsed = keyChangeReportSchema.safeParse(stored);
  if (parsed.success) return parsed.data;
  services.logger.warn('drill key changes unreadable: left out of the report', { drillId });
  return undefined;
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
