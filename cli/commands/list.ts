// `keycloak-backup list`: every backup in the buckets with tiers, size, verification, the regions holding an intact
// copy, and age; `--from-dr` reads the DR region alone.

import { targetPrefix } from '../../functions/core/layout.js';
import { isVerified, type Manifest } from '../../functions/core/manifest.js';
import type { ManifestKeyring, ObjectStore } from '../../functions/core/ports.js';
import { compareBackupIds } from '../../functions/core/schedule.js';
import { type CatalogEntry, listTargets, readCatalog } from '../../functions/core/stored-backups.js';
import type { Services } from '../../functions/platform/services.js';
import { formatBytes, formatDuration, formatTable } from '../format.js';
import { withSession } from '../session.js';

export interface ListedBackup {
  backupId: string;
  target: string;
  tiers: string[];
  /** The dump's recorded size when a copy is intact; otherwise what is left of it (0 when every dump is gone). */
  storedBytes: number;
  complete: boolean;
  /** complete: authenticated manifest; unauthenticated: a manifest without MAC (not trusted); invalid: a manifest
   * that cannot be read or trusted (see problem); incomplete: no manifest. */
  state: 'complete' | 'unauthenticated' | 'invalid' | 'incomplete';
  /** Its last verification passed and its dump is stored as the manifest describes, in a listed region. */
  verified: boolean | null;
  /** Regions holding an intact copy: the manifest and the dump object of the size it records. */
  regions: string[];
  ageMs: number;
  retainUntil: string | null;
  problem?: string;
}

interface Region {
  store: ObjectStore;
  /** Every object under each target, key → size: what is really there. */
  objects: Map<string, number>;
  catalog: Map<string, CatalogEntry[]>;
  /** Why the region could not be read (a bucket gone, no permission). */
  problem?: string;
}

export async function listBackups(
  services: Services,
  options: { fromDr?: boolean } = {},
): Promise<ListedBackup[]> {
  return (await inventory(services, options)).backups;
}

/**
 * Lists both regions (or, `fromDr`, the DR region alone): each backup once, with the copies that are intact, and
 * the regions that could not be read.
 */
export async function inventory(
  services: Services,
  options: { fromDr?: boolean } = {},
): Promise<{ backups: ListedBackup[]; unreadable: string[] }> {
  const stores = options.fromDr ? [services.drStore] : [services.primaryStore, services.drStore];
  const regions = await Promise.all(stores.map((store) => readRegion(store, services.envelope)));
  const now = services.clock.now().getTime();
  const listed: ListedBackup[] = [];
  const targets = [...new Set(regions.flatMap((r) => [...r.catalog.keys()]))].sort();
  for (const target of targets) {
    const byId = new Map<string, { region: Region; entry: CatalogEntry }[]>();
    for (const region of regions) {
      for (const entry of region.catalog.get(target) ?? []) {
        byId.set(entry.backupId, [...(byId.get(entry.backupId) ?? []), { region, entry }]);
      }
    }
    for (const [backupId, copies] of byId) {
      const manifest = copies.find((c) => c.entry.parsed)?.entry.parsed;
      const intact = copies.filter((c) => c.entry.parsed && dumpIntact(c.region, c.entry.parsed));
      const problems = [
        ...copies.map((c) => c.entry.problem).filter((p): p is string => p !== undefined),
        ...copies
          .filter((c) => c.entry.parsed && !intact.includes(c))
          .map(
            (c) =>
              `dump ${c.entry.parsed!.dump.key} missing or not of its recorded size in ${c.region.store.region}`,
          ),
      ];
      const shown = manifest ?? copies.find((c) => c.entry.unauthenticated)?.entry.unauthenticated;
      const problem = copies.find((c) => c.entry.problem)?.entry;
      listed.push({
        backupId,
        target,
        tiers: shown?.tiers ?? [],
        // What is stored: the recorded size where a copy is intact, else the largest dump object still there.
        storedBytes:
          shown && (intact.length > 0 || !manifest)
            ? shown.dump.storedBytes
            : shown
              ? Math.max(0, ...copies.map((c) => c.region.objects.get(shown.dump.key) ?? 0))
              : Math.max(...copies.map((c) => c.entry.bytes)),
        complete: manifest !== undefined,
        verified: manifest ? isVerified(manifest) && intact.length > 0 : null,
        state: manifest ? 'complete' : shown ? 'unauthenticated' : problem ? 'invalid' : 'incomplete',
        regions: intact.map((c) => c.region.store.region),
        ageMs: now - new Date(shown?.scheduledAt ?? copies[0]!.entry.lastModified).getTime(),
        retainUntil: shown?.retainUntil ?? null,
        ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
      });
    }
  }
  listed.sort((a, b) => compareBackupIds(b.backupId, a.backupId) || a.target.localeCompare(b.target));
  return { backups: listed, unreadable: regions.flatMap((r) => (r.problem ? [r.problem] : [])) };
}

async function readRegion(store: ObjectStore, keyring: ManifestKeyring): Promise<Region> {
  const region: Region = { store, objects: new Map(), catalog: new Map() };
  try {
    for (const target of await listTargets(store)) {
      for await (const object of store.list(targetPrefix(target)))
        region.objects.set(object.key, object.size);
      region.catalog.set(target, await readCatalog(store, keyring, target));
    }
  } catch (error) {
    region.problem = `${store.bucket} in ${store.region} cannot be read: ${(error as Error).message}`;
  }
  return region;
}

function dumpIntact(region: Region, manifest: Manifest): boolean {
  return region.objects.get(manifest.dump.key) === manifest.dump.storedBytes;
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
      b.regions.join(',') || 'none',
      formatDuration(b.ageMs),
    ]),
  ]);
  return problems.length > 0 ? `${table}\n\nproblems:\n${problems.map((p) => `  ${p}`).join('\n')}` : table;
}

/**
 * Backups whose only intact copy is in the DR region (the primary bucket lost them, or is gone): said, with the
 * command that restores them, since a plain `restore` looks in the primary region first.
 */
export function drOnlyNote(backups: readonly ListedBackup[], drRegion: string): string | undefined {
  const only = backups.filter((b) => b.regions.length === 1 && b.regions[0] === drRegion).length;
  if (only === 0) return undefined;
  return `${only} ${only === 1 ? 'backup is' : 'backups are'} only in the DR region (${drRegion}): restore one with keycloak-backup restore <backup> --from-dr --to URL`;
}

export async function listCommand(options: {
  stateDir?: string;
  json?: boolean;
  fromDr?: boolean;
}): Promise<number> {
  return withSession({ stateDir: options.stateDir, quiet: options.json }, async ({ services }) => {
    const { backups, unreadable } = await inventory(services, { fromDr: options.fromDr });
    console.log(options.json ? JSON.stringify(backups, null, 2) : formatBackupList(backups));
    const note = options.fromDr || options.json ? undefined : drOnlyNote(backups, services.drStore.region);
    if (note) console.log(note);
    for (const problem of unreadable) console.error(`warning: ${problem}`);
    // Nothing could be read at all: that is a failed operation, not an empty list.
    return unreadable.length > 0 && backups.length === 0 ? 1 : 0;
  });
}
