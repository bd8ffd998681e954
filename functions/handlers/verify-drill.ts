import {
  drillStepInput,
  effectiveRestoreTime,
  failedCheckNames,
  findNearestManifest,
  parseRestoreTime,
} from '../core/drill.js';
import { DatabaseUnavailableError } from '../core/errors.js';
import type { CheckRecord } from '../core/keycloak/snapshot-schema.js';
import { drillKeyChangesKey } from '../core/layout.js';
import { keyReportAfter, readKeyReferences, reintroducedKeysAlert } from '../core/restore-keys.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

export function makeHandler(services: Services) {
  return lambdaHandler('drill-verify', drillStepInput, services.logger, async (request, { logger }) => {
    const { config, clock } = services;
    const instance = await services.pitr.describe(request.instanceId);
    if (instance.status !== 'available' || !instance.databaseUrl) {
      throw new DatabaseUnavailableError(
        `drill instance ${request.instanceId} is ${instance.status}, not available`,
        {
          hint: 'it was deleted or failed after the restore: start the drill again',
        },
      );
    }
    const restoreTime = effectiveRestoreTime(parseRestoreTime(request.time), new Date(request.requestedAt));
    const restored = await services.tools.identifyDatabase(instance.databaseUrl);
    const manifest = await findNearestManifest(
      services.primaryStore,
      services.envelope,
      request.target,
      restoreTime,
      restored,
    );
    const report = await services.tools.verifyKeycloak(instance.databaseUrl, {
      source: manifest
        ? { ...manifest.contents, keycloakVersion: manifest.source.keycloakVersion }
        : undefined,
      mode: 'pitr',
      tolerancePercent: config.KB_DRILL_NEAR_TOLERANCE_PERCENT,
    });
    const checks: CheckRecord[] = report.checks.map((c) => ({
      name: c.name,
      status: c.status,
      detail: c.detail,
      ...(c.class ? { class: c.class } : {}),
    }));
    if (instance.reachedTime) {
      // Recovery stops silently at the end of the WAL it finds: a copy short of the asked time is a failed drill.
      const short = instance.reachedTime.getTime() < restoreTime.getTime();
      checks.push({
        name: 'reached-time',
        status: short ? 'fail' : 'pass',
        detail: `recovery reached ${instance.reachedTime.toISOString()}${short ? `, short of ${restoreTime.toISOString()}` : ''}`,
      });
    }
    if (!manifest) {
      checks.push({
        name: 'nearest-manifest',
        status: 'warn',
        detail: `no backup manifest taken before ${restoreTime.toISOString()}: only the standalone checks ran`,
      });
    }
    const restoredTo = request.time === 'latest' ? 'the latest restorable time' : request.time;
    const keys = await keyReportAfter(
      services,
      // The newest verified backup of the database restored, never another one's under the same target.
      await readKeyReferences(services, request.target, { source: restored }),
      {
        label: `${restoredTo} (drill ${request.drillId})`,
        databaseUrl: instance.databaseUrl,
      },
    );
    await services.primaryStore.putJson(drillKeyChangesKey(request.target, request.drillId), keys.report);
    const alert = reintroducedKeysAlert(keys.report, { ...request, restoredTo });
    if (alert) await services.notifier.publish(alert);
    const failedChecks = failedCheckNames(checks);
    const passed = failedChecks.length === 0;
    const summary = passed
      ? `all ${checks.length} checks passed`
      : `${failedChecks.length} of ${checks.length} checks failed: ${failedChecks.join(', ')}`;
    logger.info('drill verified', {
      drillId: request.drillId,
      passed,
      failedChecks,
      manifestBackupId: manifest?.backupId ?? null,
      reintroducedKeys: keys.report.reintroduced.length,
    });
    return {
      passed,
      failedChecks,
      summary,
      checks,
      keycloakVersion: report.keycloakVersion,
      manifestBackupId: manifest?.backupId ?? null,
      verifiedAt: clock.now().toISOString(),
    };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
