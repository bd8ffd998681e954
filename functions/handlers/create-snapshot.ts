// Lambda: starts the storage snapshot of a target for this backup (RDS manual snapshot; locally a base backup).
import { z } from 'zod';
import { retentionPolicy } from '../core/expire.js';
import { snapshotIdFor } from '../core/plan.js';
import { retainUntilFor } from '../core/retention.js';
import { TIERS, timeOfBackupId } from '../core/schedule.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ target: z.string(), backupId: z.string(), tiers: z.array(z.enum(TIERS)).min(1) });

export function makeHandler(services: Services) {
  return lambdaHandler(
    'snapshot',
    input,
    services.logger,
    async ({ target, backupId, tiers }, { logger }) => {
      const scheduledAt = timeOfBackupId(backupId);
      const retainUntil = retainUntilFor(scheduledAt, tiers, retentionPolicy(services.config));
      const snapshot = await services.snapshots.create({
        target,
        snapshotId: snapshotIdFor(target, backupId),
        backupId,
        retainUntil,
      });
      logger.info('snapshot started', { target, snapshotId: snapshot.snapshotId, status: snapshot.status });
      return { snapshotId: snapshot.snapshotId, status: snapshot.status };
    },
  );
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
