// Lambda: starts the copy of an available snapshot into the DR region under the DR key.
import { z } from 'zod';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ target: z.string(), snapshotId: z.string() });

export function makeHandler(services: Services) {
  return lambdaHandler(
    'snapshot-copy',
    input,
    services.logger,
    async ({ target, snapshotId }, { logger }) => {
      const copy = await services.snapshots.copyToDr(target, snapshotId);
      logger.info('snapshot copy started', {
        target,
        snapshotId: copy.snapshotId,
        region: copy.region,
        status: copy.status,
      });
      return { snapshotId: copy.snapshotId, status: copy.status };
    },
  );
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
