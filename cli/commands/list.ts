// `keycloak-backup list`: every backup in the buckets with tiers, size, verification, regions and age.

import { listTargets, readCatalog } from '../../functions/core/catalog.js';
import { isVerified } from '../../functions/core/manifest.js';
import type { Services } from '../../functions/platform/services.js';
import { formatBytes, formatDuration, formatTable } from '../format.js';
import { withSession } from '../session.js';

export interface ListedBackup {
  backupId: string;
  target: string;
  tiers: string[];
  storedBytes: number;
  complete: boolean;
  /** complete: authenticated manifest; unauthenticated: a manifest without MAC (not trusted); invalid: a manifest
   * that cannot be read or trusted (see problem); incomplete: no manifest. */
  state: 'complete' | 'unauthenticated' | 'invalid' | 'incomplete';
  verified: boolean | null;
  regions: string[];
  ageMs: number;
  retainUntil: string | null;
  problem?: string;
}

export async function listBackups(services: Services): Promise<ListedBackup[]> {
  const now = services.clock.now().getTime();
  const listed: ListedBackup[] = [];
  for (const target of await listTargets(services.primaryStore)) {
    const dr = new Set(
      (await readCatalog(services.drStore, services.envelope, target))
        .filter((b) => b.parsed)
        .map((b) => b.backupId),
    );
    for (const entry of await readCatalog(services.primaryStore, services.envelope, target)) {
      const manifest = entry.parsed;
      const shown = manifest ?? entry.unauthenticated;
      listed.push({
        backupId: entry.backupId,
        target,
        tiers: shown?.tiers ?? [],
        storedBytes: shown?.dump.storedBytes ?? entry.bytes,
        complete: manifest !== undefined,
        verified: manifest ? isVerified(manifest) : null,
        state: manifest
          ? 'complete'
          : entry.unauthenticated
            ? 'unauthenticated'
            : entry.problem
              ? 'invalid'
              : 'incomplete',
        regions: [services.primaryStore.region, ...(dr.has(entry.backupId) ? [services.drStore.region] : [])],
        ageMs: now - new Date(shown?.scheduledAt ?? entry.lastModified).getTime(),
        retainUntil: shown?.retainUntil ?? null,
        problem: entry.problem,
      });
    }
  }
  return listed.sort((a, b) =>
    a.backupId < b.backupId ? 1 : a.backupId > b.backupId ? -1 : a.target.localeCompare(b.target),
  );
}

export function formatBackupList(backups: readonly ListedBackup[]): string {
  if (backups.length === 0) return 'no backups yet: run `keycloak-backup backup`';
  const verified = (b: ListedBackup) =>
    b.state === 'invalid' ? 'INVALID' : b.state !== 'complete' ? b.state : b.verified ? 'yes' : 'NO';
  const problems = backups.filter((b) => b.problem).map((b) => `${b.backupId} ${b.target}: ${b.problem}`);
  const table = formatTable([
    ['backup', 'target', 'tiers', 'size', 'verified', 'regions', 'age'],
    ...backups.map((b) => [
      b.backupId,
      b.target,
      b.tiers.join(',') || '-',
      formatBytes(b.storedBytes),
      verified(b),
      b.regions.join(','),
      formatDuration(b.ageMs),
    ]),
  ]);
  return problems.length > 0 ? `${table}\n\nproblems:\n${problems.map((p) => `  ${p}`).join('\n')}` : table;
}

export async function listCommand(options: { stateDir?: string; json?: boolean }): Promise<number> {
  return withSession({ stateDir: options.stateDir, quiet: options.json }, async ({ services }) => {
    const backups = await listBackups(services);
    console.log(options.json ? JSON.stringify(backups, null, 2) : formatBackupList(backups));
    return 0;
  });
}
