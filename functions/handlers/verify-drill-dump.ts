import { drillStepInput, effectiveRestoreTime, parseRestoreTime } from '../core/drill.js';
import { verifyDumpFromDr } from '../core/drill-dump.js';
import { DatabaseUnavailableError } from '../core/errors.js';
import { lambdaHandler, TIMEOUT_MARGIN_MS } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

/** Kept back from the restore's time for the Keycloak checks and dropping the scratch database. */
const CHECKS_RESERVE_MS = 60_000;

export function makeHandler(services: Services) {
  return lambdaHandler(
    'drill-dr-dump',
    drillStepInput,
    services.logger,
    async (request, { logger, remainingMs }) => {
      const { config, clock } = services;
      const instance = await services.pitr.describe(request.instanceId);
      if (instance.status !== 'available' || !instance.databaseUrl) {
        throw new DatabaseUnavailableError(
          `drill instance ${request.instanceId} is ${instance.status}, not available`,
          { hint: 'it was deleted or failed after the restore: start the drill again' },
        );
      }
      const result = await verifyDumpFromDr(
        {
          primaryStore: services.primaryStore,
          drStore: services.drStore,
          drEnvelope: services.drEnvelope ?? services.envelope,
          tools: services.tools,
        },
        {
          target: request.target,
          restoreTime: effectiveRestoreTime(parseRestoreTime(request.time), new Date(request.requestedAt)),
          serverUrl: instance.databaseUrl,
          jobs: config.KB_RESTORE_JOBS,
          budget: {
            remainingMs: remainingMs(),
            reserveMs: TIMEOUT_MARGIN_MS + CHECKS_RESERVE_MS,
            mibPerSecond: config.KB_DRILL_DUMP_RESTORE_MIB_PER_SECOND,
          },
          now: () => clock.now(),
        },
      );
      logger.info('dump from the dr bucket checked', {
        drillId: request.drillId,
        status: result.status,
        backupId: result.backupId,
        failedChecks: result.failedChecks,
        restoreSeconds: result.restoreSeconds,
      });
      return result;
    },
  );
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
