// Lambda: reads a drill request and checks its time against the restorable window; refuses with the exact reason.
import { z } from 'zod';
import { assertRestorable, drillIdFor, formatRestoreTime, parseDrillRequest } from '../core/drill.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ request: z.unknown(), execution: z.string().nullish() });

export function makeHandler(services: Services) {
  return lambdaHandler('drill-validate', input, services.logger, async ({ request }, { logger }) => {
    const { config, clock } = services;
    const requestedAt = clock.now();
    const drill = parseDrillRequest(request, {
      targets: config.KB_TARGETS.map((t) => t.name),
      maxMinutes: config.KB_DRILL_MAX_MINUTES,
    });
    const drillId = drillIdFor(drill.target, requestedAt);
    const window = await services.pitr.restorableWindow(drill.target);
    // Throws RestoreWindowError: the state machine alerts and stops before anything is started.
    assertRestorable(drill.time, window, clock.now());
    logger.info('drill accepted', {
      drillId,
      target: drill.target,
      time: formatRestoreTime(drill.time),
      earliest: window.earliest.toISOString(),
      latest: window.latest.toISOString(),
    });
    return {
      drillId,
      instanceId: drillId,
      target: drill.target,
      time: formatRestoreTime(drill.time),
      keepMinutes: drill.keepMinutes,
      keepSeconds: drill.keepMinutes * 60,
      requestedAt: requestedAt.toISOString(),
      earliest: window.earliest.toISOString(),
      latest: window.latest.toISOString(),
    };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
