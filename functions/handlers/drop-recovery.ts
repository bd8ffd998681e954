// Lambda: `pitr --drop NAME` on the recover machine: stops and deletes a kept recovery (nothing else removes one).
import { z } from 'zod';
import { InvalidInputError } from '../core/errors.js';
import { checkRecoveryName } from '../core/recovery.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ drop: z.string(), execution: z.string().nullish() });

export function makeHandler(services: Services) {
  return lambdaHandler('recovery-drop', input, services.logger, async (request, { logger }) => {
    const name = checkRecoveryName(request.drop, 'drop', false);
    const before = await services.pitr.describe(name);
    if (before.purpose === 'drill') {
      throw new InvalidInputError(`${name} is a restore drill, not a kept recovery`, {
        hint: 'drills are torn down by their own workflow and the sweeper',
      });
    }
    const existed = before.status !== 'gone';
    if (existed) await services.pitr.teardown(name);
    logger.info('recovery dropped', { name, existed });
    return { name, existed, droppedAt: services.clock.now().toISOString() };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
