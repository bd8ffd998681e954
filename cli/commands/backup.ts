// `keycloak-backup backup`: runs the backup workflow locally, against the seeded database or the user's own.

import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { readManifest } from '../../functions/core/catalog.js';
import { InvalidInputError } from '../../functions/core/errors.js';
import { formatBytes, formatDuration } from '../format.js';
import { withSession } from '../session.js';

export interface BackupOptions {
  stateDir?: string;
  time?: string;
  databaseUrl?: string;
  replicaUrl?: string;
  targetName?: string;
}

/** The environment that makes the user's own database the only target (no snapshots: it is not our cluster). */
export function externalTargetEnv(options: BackupOptions): Record<string, string> {
  if (!options.databaseUrl) {
    if (options.replicaUrl) throw new InvalidInputError('--replica-url needs --database-url');
    return {};
  }
  let database: string;
  try {
    database = decodeURIComponent(new URL(options.databaseUrl).pathname.slice(1));
  } catch {
    throw new InvalidInputError('--database-url is not a URL', {
      hint: 'postgres://user:password@host:port/keycloak',
    });
  }
  if (!database)
    throw new InvalidInputError('--database-url names no database', {
      hint: 'postgres://user@host:5432/keycloak',
    });
  return {
    KB_TARGETS: JSON.stringify([
      {
        name: options.targetName ?? 'external',
        database,
        replica: options.replicaUrl ?? options.databaseUrl,
        primary: options.databaseUrl,
      },
    ]),
    KB_SNAPSHOT_TIERS: '',
  };
}

export async function backupCommand(options: BackupOptions): Promise<number> {
  const env = externalTargetEnv(options);
  return withSession({ stateDir: options.stateDir, env }, async ({ services, runMachine, progress }) => {
    const alertsBefore = (await readOutbox(services.config.KB_OUTBOX_FILE!)).length;
    const result = await runMachine('backup', options.time ? { time: options.time } : {});
    progress.done();
    if (result.status === 'FAILED') {
      const alerts = (await readOutbox(services.config.KB_OUTBOX_FILE!)).slice(alertsBefore);
      console.error(
        `backup failed after ${formatDuration(result.durationMs)}: ${result.error}: ${result.cause}`,
      );
      for (const alert of alerts) console.error(`  ${alert.subject}: ${alert.cause}`);
      return 1;
    }
    const output = result.output as {
      plan: { backupId: string; targets: { target: string }[] };
      report: { summary: string };
    };
    console.log(output.report.summary);
    for (const { target } of output.plan.targets) {
      const manifest = await readManifest(
        services.primaryStore,
        services.envelope,
        target,
        output.plan.backupId,
      );
      console.log(
        `${target} ${manifest.backupId}: ${formatBytes(manifest.dump.plainBytes)} dumped in ${formatDuration(manifest.dump.durationMs)}, ` +
          `${formatBytes(manifest.dump.storedBytes)} stored encrypted, copies: ${[services.primaryStore.region, ...manifest.copies.map((c) => c.region)].join(', ')}`,
      );
    }
    console.log(`done in ${formatDuration(result.durationMs)}`);
    return 0;
  });
}
