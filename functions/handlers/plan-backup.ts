// Lambda: plans the run (backupId, tiers, per-target work) and runs the preflight before anything is written.
import { z } from 'zod';
import { inspectSource, standbyWarnings } from '../adapters/postgres/source-info.js';
import { dayPrefix, parseBackupKey } from '../core/layout.js';
import { planRun } from '../core/plan.js';
import { assertKeyOfBackups } from '../core/stored-backups.js';
import { assertPgDumpCanDump, parsePgVersion } from '../core/versions.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, planSettings, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const input = z.object({
  request: z
    .object({
      time: z.string().optional(),
      replay: z.boolean().optional(),
      targets: z.array(z.string()).optional(),
    })
    .passthrough()
    .default({}),
  execution: z.string().optional(),
});

export function makeHandler(services: Services) {
  return lambdaHandler('plan', input, services.logger, async ({ request }, { logger }) => {
    const { config } = services;
    const now = services.clock.now();
    const settings = planSettings(config);
    // A manual run's id is its second; the ids stored that day make a second run in the same second unique.
    const taken = new Set<string>();
    if (!request.time) {
      for (const target of request.targets?.length ? request.targets : settings.targets) {
        for await (const object of services.primaryStore.list(dayPrefix(target, now))) {
          const parsed = parseBackupKey(object.key);
          if (parsed) taken.add(parsed.backupId);
        }
      }
    }
    const plan = planRun(request, settings, now, taken);

    // Preflight: nothing is started unless the key works (and is the backups' key), the replicas answer and pg_dump can dump them.
    await services.envelope.checkUsable();
    // Before any dump starts: a key other than the one the target's backups were written under is refused.
    for (const { target } of plan.targets) {
      await assertKeyOfBackups(services.primaryStore, services.envelope, target);
    }
    const binaries = await services.binaries();
    const pgDump = await binaries.version('pg_dump');
    const preflight = [];
    for (const { target } of plan.targets) {
      const source = await inspectSource(await services.databases.connectionUrl(target, 'replica'));
      assertPgDumpCanDump({ pgDump, server: parsePgVersion(source.serverVersion) });
      const warnings = standbyWarnings(source);
      for (const warning of warnings) logger.warn(warning, { target });
      preflight.push({ target, serverVersion: source.serverVersion, pgDumpVersion: pgDump.full, warnings });
    }
    logger.info('backup planned', {
      backupId: plan.backupId,
      tiers: plan.tiers,
      targets: plan.targets.length,
    });
    return { ...plan, preflight };
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
