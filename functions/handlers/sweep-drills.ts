// Lambda: tears down drill instances older than KB_DRILL_MAX_MINUTES (left by a crashed or timed-out drill).
import { z } from 'zod';
import { drillsToSweep } from '../core/drill.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ execution: z.string().nullish() }).passthrough();

export function makeHandler(services: Services) {
  return lambdaHandler('drill-sweep', input, services.logger, async ({ execution }, { logger }) => {
    const { config, clock, pitr } = services;
    const drills = await pitr.listDrills();
    const expired = drillsToSweep(drills, clock.now(), config.KB_DRILL_MAX_MINUTES);
    for (const drill of expired) {
      await pitr.teardown(drill.instanceId);
      logger.warn('swept drill instance past its limit', {
        instanceId: drill.instanceId,
        target: drill.target,
        status: drill.status,
        createdAt: drill.createdAt.toISOString(),
      });
    }
    if (expired.length > 0) {
      // A drill outliving its limit means a drill failed to clean up after itself: someone should know.
      await services.notifier.publish({
        subject: `keycloak-backup: ${expired.length} drill instance(s) outlived ${config.KB_DRILL_MAX_MINUTES} minutes and were deleted`,
        step: 'drill-sweep',
        error: 'DrillLeftBehind',
        cause: `deleted ${expired.map((d) => d.instanceId).join(', ')}`,
        execution: execution ?? undefined,
      });
    }
    return { swept: expired.map((d) => d.instanceId), remaining: drills.length - expired.length };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
