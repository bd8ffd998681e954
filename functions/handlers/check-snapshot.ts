// Lambda: one poll of a snapshot (or its DR copy); "creating" is a state of the poll loop, not an error.
import { z } from 'zod';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ target: z.string(), snapshotId: z.string(), region: z.enum(['primary', 'dr']) });

export function makeHandler(services: Services) {
  return lambdaHandler(
    'snapshot-check',
    input,
    services.logger,
    async ({ target, snapshotId, region }, { logger }) => {
      const snapshot = await services.snapshots.describe(target, snapshotId, region);
      logger.info('snapshot status', {
        target,
        snapshotId,
        region,
        status: snapshot.status,
        progress: snapshot.progress,
      });
      return { snapshotId: snapshot.snapshotId, status: snapshot.status };
    },
  );
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
