// Lambda: checks a kept recovery's request (name, target, time against the restorable window) and starts the
// point-in-time restore under that name, tagged as a recovery: never swept, removed only by `pitr --drop`.
import { z } from 'zod';
import { assertRestorable, formatRestoreTime } from '../core/drill.js';
import { parseRecoveryRequest } from '../core/recovery.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({ request: z.unknown(), execution: z.string().nullish() });

export function makeHandler(services: Services) {
  return lambdaHandler('recovery-start', input, services.logger, async ({ request }, { logger }) => {
    const { target, time, name } = parseRecoveryRequest(
      request,
      services.config.KB_TARGETS.map((t) => t.name),
    );
    const window = await services.pitr.restorableWindow(target);
    const requestedAt = services.clock.now();
    assertRestorable(time, window, requestedAt);
    const instance = await services.pitr.restore({ target, instanceId: name, time, purpose: 'recovery' });
    logger.info('recovery started', { target, name, time: formatRestoreTime(time), status: instance.status });
    return {
      name,
      instanceId: instance.instanceId,
      target,
      time: formatRestoreTime(time),
      requestedAt: requestedAt.toISOString(),
      earliest: window.earliest.toISOString(),
      latest: window.latest.toISOString(),
      status: instance.status,
      observedAt: services.clock.now().toISOString(),
    };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
