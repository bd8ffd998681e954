// Lambda: applies the retention policy to dumps and snapshots in both regions; a failing target keeps everything.
import { z } from 'zod';
import { damagedManifestAlert } from '../core/alerts.js';
import { expireRegion } from '../core/expire.js';
import { lambdaHandler } from '../platform/handler.js';
import { deferred, retentionPolicy, type Services } from '../platform/services.js';
import { servicesFromEnv } from '../platform/wiring.js';

const branch = z.object({ failed: z.boolean() }).passthrough();
const input = z.object({
  backupId: z.string(),
  results: z.array(z.object({ target: z.string(), dump: branch, snapshot: branch })),
  execution: z.string().optional(),
});

export function makeHandler(services: Services) {
  return lambdaHandler('retention', input, services.logger, async (run, { logger }) => {
    const { config } = services;
    const failedTargets = run.results.filter((r) => r.dump.failed || r.snapshot.failed).map((r) => r.target);
    const common = {
      snapshots: services.snapshots,
      keyring: services.envelope,
      targets: config.KB_TARGETS.map((t) => t.name),
      policy: retentionPolicy(config),
      now: services.clock.now(),
      failedTargets,
    };
    const plans = [
      await expireRegion({ ...common, store: services.primaryStore, region: 'primary' }),
      await expireRegion({ ...common, store: services.drStore, region: 'dr' }),
    ];
    for (const warning of new Set(plans.flatMap((p) => p.warnings))) logger.warn(warning);
    // After the deletions: a damaged manifest is a person's to look at, named by its object (bucket and key).
    const damaged = plans.flatMap((p) => p.damaged);
    for (const manifest of damaged) {
      await services.notifier.publish(damagedManifestAlert(manifest, run.execution));
    }
    const paused = [...new Set(plans.flatMap((p) => p.paused.map((x) => `${x.target}: ${x.reason}`)))];
    const result = {
      deletedBackups: plans.reduce((n, p) => n + p.deleteBackups.length, 0),
      deletedSnapshots: plans.reduce((n, p) => n + p.deleteSnapshots.length, 0),
      paused,
      damagedManifests: damaged.map((d) => `${d.bucket}/${d.key}`),
    };
    logger.info('retention applied', result);
    return result;
  });
}

export const handler = deferred(async () => makeHandler(await servicesFromEnv()));
