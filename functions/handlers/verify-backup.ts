// Lambda: verifies a stored backup (checksum, decrypt, archive list; full tiers: scratch restore + Keycloak checks).
import { z } from 'zod';
import { verifyStep } from '../core/backup-steps.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';
import { throughput } from './progress.js';

const input = z.object({
  target: z.string(),
  backupId: z.string(),
  full: z.boolean().default(false),
  execution: z.string().optional(),
});

export function makeHandler(services: Services) {
  return lambdaHandler('verify', input, services.logger, async (request, { logger, signal }) => {
    const verification = await verifyStep(services, {
      target: request.target,
      backupId: request.backupId,
      full: request.full,
      jobs: services.config.KB_RESTORE_JOBS,
      onProgress: throughput(services, 'verify', request.target),
      signal,
    });
    logger.info('backup verified', {
      target: request.target,
      backupId: request.backupId,
      level: verification.level,
      checks: verification.checks.length,
      durationMs: verification.durationMs,
    });
    return { passed: verification.passed, level: verification.level };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
