// `npm start`: brings up the local stack, takes a daily backup, lists it, runs a restore drill, writes the report,
// and stops.

import { InvalidInputError } from '../../functions/core/errors.js';
import { archiveBytes } from '../../functions/core/manifest.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readManifest } from '../../functions/core/stored-backups.js';
import { formatBytes, formatDuration } from '../format.js';
import { withSession } from '../session.js';
import { runDrillInSession } from './drill.js';
import { formatBackupList, listBackups } from './list.js';
import { buildReport, defaultReportFile, writeReport } from './report.js';

/** The latest daily run (00:00 UTC today): the demo's backup gets the daily tier, a snapshot and a full verify. */
export function latestDailyRun(now: Date, dailyHourUtc: number): Date {
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), dailyHourUtc));
  return today <= now ? today : new Date(today.getTime() - 86_400_000);
}

export async function demoCommand(options: { stateDir?: string }): Promise<number> {
  return withSession({ stateDir: options.stateDir }, async (session) => {
    const { stack, services, progress } = session;
    if (!stack) {
      throw new InvalidInputError('demo runs on the local stack only', {
        hint: 'unset KB_RUNTIME, or use backup and drill on AWS',
      });
    }
    console.log('local stack is up:');
    console.log(`  primary  ${redactUser(stack.primaryUrl)}`);
    console.log(`  replica  ${redactUser(stack.replicaUrl)} (hot standby)`);
    console.log(
      `  s3       ${stack.s3Endpoint} buckets ${stack.primaryBucket} (${services.primaryStore.region}), ${stack.drBucket} (${services.drStore.region})`,
    );
    console.log(`  keyring  ${stack.keyFile}`);

    const time = latestDailyRun(services.clock.now(), services.config.KB_DAILY_HOUR_UTC);
    const backupId = backupIdFor(time);
    console.log(`\nbackup ${backupId} (the daily run):`);
    const backup = await session.runMachine('backup', { time: time.toISOString() });
    progress.done();
    if (backup.status === 'FAILED') {
      console.error(`backup failed: ${backup.error}: ${backup.cause}`);
      return 1;
    }
    const manifest = await readManifest(services.primaryStore, services.envelope, 'keycloak', backupId);
    const verification = manifest.verification.at(-1);

    console.log('\nbackups:');
    console.log(formatBackupList(await listBackups(services)));

    console.log('\nrestore drill (point in time: latest):');
    const drill = await runDrillInSession(session, { time: 'latest', keepMinutes: 0 });

    console.log('\nsummary:');
    console.log(
      `  backup   ${backupId}: ${formatBytes(archiveBytes(manifest.dump))} dump, ${formatBytes(manifest.dump.storedBytes)} encrypted, ` +
        `verified ${verification?.level ?? 'no'} (${verification?.passed ? 'passed' : 'FAILED'}), in ${[services.primaryStore.bucket, ...manifest.copies.map((c) => c.bucket)].join(' and ')}`,
    );
    console.log(
      `  drill    ${drill.passed ? 'passed' : 'FAILED'}; recovery time ${drill.recoveryTimeMs === undefined ? 'not measured' : formatDuration(drill.recoveryTimeMs)}`,
    );
    console.log(`  workflow ${formatDuration(backup.durationMs)} for the backup`);
    const report = await writeReport(await buildReport(services), defaultReportFile(options.stateDir));
    console.log(`  report   ${report} (open it in a browser; keycloak-backup report writes it anew)`);
    return drill.passed ? 0 : 1;
  });
}

function redactUser(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  return parsed.toString();
}
