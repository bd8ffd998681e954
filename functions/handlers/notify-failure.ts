// Lambda: publishes the alert for a caught step failure (target, step, error, execution).
import { z } from 'zod';
import { alertFor, pagesOperator } from '../core/alerts.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({
  step: z.string(),
  target: z.string().nullish(),
  backupId: z.string().nullish(),
  execution: z.string().nullish(),
  error: z.object({ Error: z.string().optional(), Cause: z.unknown().optional() }),
  failedChecks: z.array(z.string()).optional(),
});

export function makeHandler(services: Services) {
  return lambdaHandler('notify', input, services.logger, async (failure, { logger }) => {
    const alert = alertFor(failure);
    if (!pagesOperator(failure)) {
      logger.warn('request refused before anything started: recorded, not alerted', {
        target: alert.target,
        failedStep: alert.step,
        error: alert.error,
        cause: alert.cause,
        execution: alert.execution,
      });
      return { notified: false, subject: alert.subject };
    }
    await services.notifier.publish(alert);
    logger.error('step failed', {
      target: alert.target,
      failedStep: alert.step,
      error: alert.error,
      execution: alert.execution,
    });
    return { notified: true, subject: alert.subject };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
