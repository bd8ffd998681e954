// Lambda: one poll of a drill instance; "creating" is a state of the poll loop, too long in it is a failure.
import { z } from 'zod';
import { SnapshotFailedError } from '../core/errors.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({
  instanceId: z.string(),
  requestedAt: z.string().datetime({ offset: true }),
  execution: z.string().nullish(),
});

export function makeHandler(services: Services) {
  return lambdaHandler(
    'drill-restore-check',
    input,
    services.logger,
    async ({ instanceId, requestedAt }, { logger }) => {
      const instance = await services.pitr.describe(instanceId);
      const now = services.clock.now();
      const minutes = (now.getTime() - Date.parse(requestedAt)) / 60_000;
      logger.info('drill instance status', {
        instanceId,
        status: instance.status,
        minutes: Math.round(minutes),
      });
      const limit = services.config.KB_DRILL_MAX_MINUTES;
      if (instance.status === 'creating' && minutes > limit) {
        throw new SnapshotFailedError(
          `drill instance ${instanceId} is still not available after ${limit} minutes`,
          {
            hint: 'the restore is stuck or the database is very large: raise KB_DRILL_MAX_MINUTES or look at the instance',
          },
        );
      }
      return { instanceId, status: instance.status, observedAt: now.toISOString() };
    },
  );
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
