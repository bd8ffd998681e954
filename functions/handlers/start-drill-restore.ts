// Lambda: starts the point-in-time restore of a target into a drill instance (AWS returns creating; local, available).
import { z } from 'zod';
import { isDrillId, parseRestoreTime } from '../core/drill.js';
import { InvalidInputError } from '../core/errors.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({
  target: z.string(),
  instanceId: z.string(),
  time: z.string(),
  execution: z.string().nullish(),
});

export function makeHandler(services: Services) {
  return lambdaHandler(
    'drill-restore',
    input,
    services.logger,
    async ({ target, instanceId, time }, { logger }) => {
      if (!isDrillId(instanceId)) {
        throw new InvalidInputError(`"${instanceId}" is not a drill instance name`, {
          hint: 'drill instances are named drill-<target>-<yyyymmdd>t<hhmmss>',
        });
      }
      const instance = await services.pitr.restore({ target, instanceId, time: parseRestoreTime(time) });
      logger.info('drill restore started', { target, instanceId, status: instance.status });
      return {
        instanceId: instance.instanceId,
        status: instance.status,
        observedAt: services.clock.now().toISOString(),
      };
    },
  );
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
