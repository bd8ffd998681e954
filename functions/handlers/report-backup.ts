// Lambda: the run's one-line summary and metrics (CloudWatch embedded metric format on AWS, a log line locally).
import { z } from 'zod';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const branch = z
  .object({ failed: z.boolean(), step: z.string().optional(), skipped: z.boolean().optional() })
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

export function makeHandler(services: Services) {
  return lambdaHandler('report', input, services.logger, async (run, { logger }) => {
    const failed = run.results.filter((r) => r.dump.failed || r.snapshot.failed);
    const parts = run.results.map((r) => {
      const dump = r.dump.failed ? `dump failed at ${r.dump.step}` : 'dump verified and copied';
      const snapshot = r.snapshot.failed
        ? `snapshot failed at ${r.snapshot.step}`
        : r.snapshot.skipped
          ? 'no snapshot (tier)'
          : 'snapshot copied';
      return `${r.target}: ${dump}, ${snapshot}`;
    });
    const retention = run.retention.failed
      ? 'retention failed'
      : `retention deleted ${run.retention.deletedBackups} backups, ${run.retention.deletedSnapshots} snapshots`;
    const summary = `backup ${run.backupId} [${run.tiers.join(',')}]: ${parts.join('; ')}; ${retention}`;
    logger.info(summary, { backupId: run.backupId, failedTargets: failed.length });
    for (const result of run.results) {
      logger.info('metrics', {
        _aws: {
          Timestamp: services.clock.now().getTime(),
          CloudWatchMetrics: [
            {
              Namespace: 'KeycloakBackup',
              Dimensions: [['Target']],
              Metrics: [
                { Name: 'BackupsSucceeded', Unit: 'Count' },
                { Name: 'BackupsFailed', Unit: 'Count' },
              ],
            },
          ],
        },
        Target: result.target,
        BackupsSucceeded: result.dump.failed ? 0 : 1,
        BackupsFailed: result.dump.failed || result.snapshot.failed ? 1 : 0,
      });
    }
    return { failedTargets: failed.length, summary };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
