// Lambda: starts the storage snapshot of a target for this backup (RDS manual snapshot; locally a base backup).
import { z } from 'zod';
import { snapshotIdFor } from '../core/plan.js';
import { retainUntilFor } from '../core/retention.js';
import { TIERS, timeOfBackupId } from '../core/schedule.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, retentionPolicy, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

/** The longest a step waits for a busy instance, and what it keeps back to report (Lambda's timeout: 15 minutes). */
const MAX_WAIT_MS = 15 * 60_000;
const WAIT_MARGIN_MS = 30_000;

const input = z.object({ target: z.string(), backupId: z.string(), tiers: z.array(z.enum(TIERS)).min(1) });

export function makeHandler(services: Services) {
  return lambdaHandler(
    'snapshot',
    input,
    services.logger,
    async ({ target, backupId, tiers }, { logger, remainingMs }) => {
      const scheduledAt = timeOfBackupId(backupId);
      const retainUntil = retainUntilFor(scheduledAt, tiers, retentionPolicy(services.config));
      const snapshot = await services.snapshots.create({
        target,
        snapshotId: snapshotIdFor(target, backupId),
        backupId,
        retainUntil,
        // A busy instance (backing up) is waited for within this step's time, less a margin to report it.
        waitUntil: new Date(
          services.clock.now().getTime() + Math.min(remainingMs(), MAX_WAIT_MS) - WAIT_MARGIN_MS,
        ),
      });
      logger.info('snapshot started', { target, snapshotId: snapshot.snapshotId, status: snapshot.status });
      return { snapshotId: snapshot.snapshotId, status: snapshot.status };
    },
  );
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
