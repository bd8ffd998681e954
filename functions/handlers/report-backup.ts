// Lambda: the run's one-line summary, a run report per target that failed somewhere, and the run's metrics (EMF).
import { z } from 'zod';
import { runReportKey } from '../core/layout.js';
import {
  backupRunMetrics,
  failuresOf,
  RUN_REPORT_VERSION,
  type RunReport,
  readRunManifests,
} from '../core/run-report.js';
import { lambdaHandler } from '../platform/handler.js';
import { defaultMetricsSink, type MetricsSink } from '../platform/metrics-sink.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const branch = z
  .object({
    failed: z.boolean(),
    held: z.boolean().optional(),
    step: z.string().optional(),
    error: z.string().optional(),
    skipped: z.boolean().optional(),
    warnings: z.array(z.string()).optional(),
  })
  .passthrough();
const input = z.object({
  backupId: z.string(),
  tiers: z.array(z.string()),
  results: z.array(z.object({ target: z.string(), dump: branch, snapshot: branch })),
  retention: z
    .object({ deletedBackups: z.number(), deletedSnapshots: z.number(), failed: z.boolean().optional() })
    .passthrough(),
  execution: z.string().optional(),
});

export function makeHandler(services: Services, deps: { metrics?: MetricsSink } = {}) {
  const metrics = deps.metrics ?? defaultMetricsSink(services);
  return lambdaHandler('report', input, services.logger, async (run, { logger }) => {
    const failed = run.results.filter((r) => r.dump.failed || r.snapshot.failed);
    const parts = run.results.map((r) => {
      const warned = r.dump.warnings?.length ? ` (warned: ${r.dump.warnings.length})` : '';
      const dump = r.dump.failed
        ? `dump failed at ${r.dump.step}`
        : r.dump.held
          ? 'dump held by another run of the same scheduled time (nothing done here)'
          : `dump verified and copied${warned}`;
      const snapshot = r.snapshot.failed
        ? `snapshot failed at ${r.snapshot.step}`
        : r.snapshot.skipped
          ? 'no snapshot (tier)'
          : 'snapshot copied';
      return `${r.target}: ${dump}, ${snapshot}`;
    });
    const retentionFailed = run.retention.failed === true;
    const retention = retentionFailed
      ? 'retention failed'
      : `retention deleted ${run.retention.deletedBackups} backups, ${run.retention.deletedSnapshots} snapshots`;
    const summary = `backup ${run.backupId} [${run.tiers.join(',')}]: ${parts.join('; ')}; ${retention}`;
    logger.info(summary, { backupId: run.backupId, failedTargets: failed.length });
    for (const outcome of run.results) {
      const failures = failuresOf(outcome, retentionFailed);
      const at = services.clock.now();
      if (failures.length > 0) {
        const report: RunReport = {
          reportVersion: RUN_REPORT_VERSION,
          backupId: run.backupId,
          target: outcome.target,
          tiers: run.tiers,
          execution: run.execution ?? null,
          recordedAt: at.toISOString(),
          failures,
        };
        await services.primaryStore.putJson(runReportKey(outcome.target, run.backupId), report);
      }
      const manifests = await readRunManifests(
        services.primaryStore,
        services.envelope,
        outcome.target,
        run.backupId,
      );
      const records = backupRunMetrics({
        outcome,
        failures,
        manifests,
        primaryRegion: services.primaryStore.region,
        at,
      });
      for (const record of records) await metrics(record);
    }
    return { failedTargets: failed.length, summary };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
