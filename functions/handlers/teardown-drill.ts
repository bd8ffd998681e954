// Lambda: stops and deletes a drill instance; succeeds when it is already gone (it runs on every path).
import { z } from 'zod';
import { isDrillId } from '../core/drill.js';
import { InvalidInputError } from '../core/errors.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ instanceId: z.string(), execution: z.string().nullish() });

export function makeHandler(services: Services) {
  return lambdaHandler('drill-teardown', input, services.logger, async ({ instanceId }, { logger }) => {
    // Never let a bad input point the teardown at a database that is not a drill.
    if (!isDrillId(instanceId)) {
      throw new InvalidInputError(`refusing to tear down "${instanceId}": not a drill instance name`, {
        hint: 'drill instances are named drill-<target>-<yyyymmdd>t<hhmmss>',
      });
    }
    await services.pitr.teardown(instanceId);
    const tornDownAt = services.clock.now().toISOString();
    logger.info('drill torn down', { instanceId });
    return { instanceId, tornDownAt };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
