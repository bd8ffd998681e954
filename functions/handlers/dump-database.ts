// Lambda: pg_dump of a target's replica, streamed through encryption into the bucket; the manifest is written last.
import { z } from 'zod';
import { dumpSizeWarningAlert } from '../core/alerts.js';
import { dumpStep } from '../core/backup-steps.js';
import { TIERS } from '../core/schedule.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, retentionPolicy, type Services, targetConfig } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';
import { throughput } from './progress.js';

const input = z.object({
  target: z.string(),
  backupId: z.string(),
  scheduledAt: z.string().datetime({ offset: true }),
  tiers: z.array(z.enum(TIERS)).min(1),
  execution: z.string().optional(),
});

/** Lambda's published ceiling for a pg_dump is about 10.5 GB in 15 minutes; warn at two thirds of the step's time. */
const SLOW_DUMP_SHARE = 2 / 3;

export function makeHandler(services: Services) {
  return lambdaHandler('dump', input, services.logger, async (request, { logger, signal, remainingMs }) => {
    const target = targetConfig(services.config, request.target);
    const budgetMs = remainingMs();
    const result = await dumpStep(services, {
      target: request.target,
      backupId: request.backupId,
      tiers: request.tiers,
      scheduledAt: new Date(request.scheduledAt),
      execution: request.execution,
      database: target.database,
      schema: services.config.KB_KEYCLOAK_SCHEMA,
      policy: retentionPolicy(services.config),
      onProgress: throughput(services, 'dump', request.target),
      signal,
    });
    const { manifest } = result;
    // Told to the operator (SNS on AWS, the outbox locally) as a warning, not a failure, and carried in the
    // workflow's result for the CLI; a log line alone went unseen (the local CLI silences its logger).
    for (const warning of result.warnings) {
      logger.warn(warning, { target: request.target });
      await services.notifier.publish(dumpSizeWarningAlert(request, warning));
    }
    if (Number.isFinite(budgetMs) && manifest.dump.durationMs > budgetMs * SLOW_DUMP_SHARE) {
      logger.warn(
        'dump used more than two thirds of the step time limit: plan a container task for this target',
        {
          target: request.target,
          durationMs: manifest.dump.durationMs,
        },
      );
    }
    logger.info(result.reused ? 'backup already complete' : 'backup dumped', {
      target: request.target,
      backupId: request.backupId,
      plainBytes: manifest.dump.plainBytes,
      storedBytes: manifest.dump.storedBytes,
      durationMs: manifest.dump.durationMs,
      replicaLagSeconds: manifest.source.replicaLagSeconds,
    });
    return {
      dumpKey: manifest.dump.key,
      storedBytes: manifest.dump.storedBytes,
      reused: result.reused,
      warnings: result.warnings,
    };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
