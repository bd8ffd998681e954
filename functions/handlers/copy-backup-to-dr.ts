// Lambda: copies a verified backup into the DR region's bucket and checks the copy's checksum.
import { z } from 'zod';
import { copyToDrStep } from '../core/backup-steps.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ target: z.string(), backupId: z.string(), execution: z.string().optional() });

export function makeHandler(services: Services) {
  return lambdaHandler('copy', input, services.logger, async ({ target, backupId }, { logger }) => {
    const copy = await copyToDrStep(services, target, backupId);
    logger.info('backup copied to the DR region', {
      target,
      backupId,
      region: copy.region,
      bytes: copy.bytes,
    });
    return { key: copy.key, region: copy.region };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
