// `keycloak-backup verify <backupId>`: re-checks a stored backup; exits non-zero naming the failed check.

import { verifyStep } from '../../functions/core/backup-steps.js';
import { InvalidInputError, VerificationFailedError } from '../../functions/core/errors.js';
import { isBackupId } from '../../functions/core/schedule.js';
import { listTargets, readCatalog } from '../../functions/core/stored-backups.js';
import type { Services } from '../../functions/platform/services.js';
import { formatTable } from '../format.js';
import { withSession } from '../session.js';

/** The target a backup id belongs to: given, or the only target that has it. */
export async function resolveTarget(
  services: Services,
  backupId: string,
  target?: string,
  store = services.primaryStore,
): Promise<string> {
  checkBackupId(backupId);
  if (target) return target;
  const owners = [];
  for (const candidate of await listTargets(store)) {
    if ((await readCatalog(store, services.envelope, candidate)).some((b) => b.backupId === backupId))
      owners.push(candidate);
  }
  if (owners.length === 1) return owners[0]!;
  throw new InvalidInputError(
    owners.length === 0
      ? `no backup ${backupId} in ${store.bucket} (${store.region})`
      : `backup ${backupId} exists for ${owners.join(', ')}`,
    {
      hint:
        owners.length === 0 ? 'run `keycloak-backup list` to see the backups' : 'choose one with --target',
    },
  );
}

/** Refuses what cannot be a backup id before anything starts. */
export function checkBackupId(backupId: string): void {
  if (!isBackupId(backupId)) {
    throw new InvalidInputError(`"${backupId}" is not a backup id`, {
      hint: 'run `keycloak-backup list` to see them',
    });
  }
}

export async function verifyCommand(
  backupId: string,
  options: {
    stateDir?: string;
    full?: boolean;
    target?: string;
    fromDr?: boolean;
    trustUnauthenticated?: boolean;
  },
): Promise<number> {
  checkBackupId(backupId);
  return withSession({ stateDir: options.stateDir }, async ({ services }) => {
    const target = await resolveTarget(services, backupId, options.target);
    try {
      const verification = await verifyStep(services, {
        target,
        backupId,
        full: options.full ?? false,
        jobs: services.config.KB_RESTORE_JOBS,
        fromDr: options.fromDr,
        fallback: true,
        trustUnauthenticated: options.trustUnauthenticated,
      });
      console.log(
        formatTable([
          ['check', 'status', 'detail'],
          ...verification.checks.map((c) => [c.name, c.status, c.detail]),
        ]),
      );
      console.log(
        `backup ${backupId} of ${target}: verified (${verification.level}, ${verification.region})`,
      );
      if (verification.failedCopy) {
        // The backup is restorable from the other region, but one copy is damaged: that needs a person.
        console.error(
          `verification failed: ${verification.failedCopy.failedChecks.join(', ')} (the copy in ${verification.failedCopy.region})`,
        );
        console.error(
          `the copy in ${verification.region} verified instead: ${verification.fallbackReason}; restore uses it automatically`,
        );
        return 1;
      }
      return 0;
    } catch (error) {
      if (!(error instanceof VerificationFailedError)) throw error;
      console.error(`verification failed: ${error.failedChecks.join(', ')}`);
      console.error(error.message);
      return 1;
    }
  });
}
