// `keycloak-backup restore <backupId> --to URL`: download, decrypt, pg_restore, then the Keycloak checks.

import { prepareRestoreTarget } from '../../functions/adapters/postgres/restore-target.js';
import { readRestoreManifest, restoreStep } from '../../functions/core/backup-steps.js';
import { InvalidInputError } from '../../functions/core/errors.js';
import { archiveBytes } from '../../functions/core/manifest.js';
import { formatBytes, formatDuration, formatTable } from '../format.js';
import { RestoreKeyReport } from '../realm-keys.js';
import { settleRevivedSessions } from '../revived-sessions.js';
import { withSession } from '../session.js';
import { checkBackupId, resolveTarget } from './verify.js';

export interface RestoreOptions {
  stateDir?: string;
  to: string;
  jobs?: number;
  target?: string;
  fromDr?: boolean;
  clearSessions?: boolean;
  /** Disable the realm keys the restore brings back that the live database (or the newest backup) no longer has. */
  disableReintroducedKeys?: boolean;
  /** The realm-key report as one JSON document on stdout. */
  json?: boolean;
  /** Trust a manifest without a MAC (written before manifests were authenticated). */
  trustUnauthenticated?: boolean;
}

export async function restoreCommand(backupId: string, options: RestoreOptions): Promise<number> {
  checkBackupId(backupId);
  if (!/^postgres(ql)?:\/\//.test(options.to)) {
    throw new InvalidInputError('--to must be a postgres:// URL', {
      hint: 'e.g. --to postgres://postgres@127.0.0.1:5432/keycloak_restored',
    });
  }
  return withSession({ stateDir: options.stateDir }, async ({ services, progress }) => {
    const store = options.fromDr ? services.drStore : services.primaryStore;
    const target = await resolveTarget(services, backupId, options.target, store);
    const chosen = await readRestoreManifest(services, {
      target,
      backupId,
      fromDr: options.fromDr,
      trustUnauthenticated: options.trustUnauthenticated,
    });
    const keys = await RestoreKeyReport.before(
      services,
      target,
      { label: `backup ${backupId}`, manifest: chosen.manifest },
      options,
    );
    const database = await prepareRestoreTarget(options.to);
    console.error(`${database.created ? 'created' : 'using empty'} database for the restore`);
    const started = Date.now();
    let restored: Awaited<ReturnType<typeof restoreStep>>;
    try {
      restored = await restoreStep(services, {
        target,
        backupId,
        databaseUrl: options.to,
        jobs: options.jobs ?? services.config.KB_RESTORE_JOBS,
        fromDr: options.fromDr,
        trustUnauthenticated: options.trustUnauthenticated,
        resetDatabase: database.created ? () => database.reset() : undefined,
        afterRestore: (url) => keys.afterRestore(url, `backup ${backupId}`),
        onProgress: (bytes) =>
          progress.update(
            `  restore ${target}: ${formatBytes(bytes)} read at ${formatBytes(bytes / Math.max((Date.now() - started) / 1000, 0.001))}/s`,
          ),
      });
    } catch (error) {
      progress.done();
      // A half-restored database would refuse the next attempt and could be mistaken for a restored one.
      if (await database.discard().catch(() => false)) {
        console.error('dropped the database this restore created: nothing half-restored is left');
      }
      throw error;
    }
    progress.done();
    console.error(
      restored.fallbackReason
        ? `restored from ${restored.region}, the other region's copy: ${restored.fallbackReason}`
        : `restored from ${restored.region}`,
    );
    console.log(
      formatTable([
        ['check', 'status', 'detail'],
        ...restored.report.checks.map((c) => [c.name, c.status, c.detail]),
      ]),
    );
    console.log(
      `restored ${backupId} of ${target} (${formatBytes(archiveBytes(restored.manifest.dump))}, Keycloak ${restored.report.keycloakVersion ?? 'unknown'}) in ${formatDuration(restored.durationMs)}`,
    );
    await settleRevivedSessions({
      databaseUrl: options.to,
      schema: services.config.KB_KEYCLOAK_SCHEMA,
      clear: options.clearSessions,
      what: 'restore',
      storedWhere: 'in the backup',
    });
    keys.finish();
    if (!restored.report.passed) {
      const failed = restored.report.checks.filter((c) => c.status === 'fail').map((c) => c.name);
      console.error(`the restored database failed checks: ${failed.join(', ')}`);
      return 1;
    }
    return 0;
  });
}
