// The realm-key side of a restore over the ports: what the restore point is compared with, the report, the decision.

import {
  algorithmsLeftWithoutKey,
  buildKeyChangeReport,
  describeKey,
  type KeyChangeReport,
  type KeyDecision,
  type KeySide,
  type RealmKeyInventory,
} from './keycloak/index.js';
import type { Manifest } from './manifest.js';
import type { Alert, DatabaseLocator, DatabaseTools, ManifestKeyring, ObjectStore } from './ports.js';
import { type RecordedSource, sameSource } from './source.js';
import { readCatalog } from './stored-backups.js';

export interface RestoreKeyPorts {
  primaryStore: ObjectStore;
  envelope: ManifestKeyring;
  databases: DatabaseLocator;
  tools: Pick<DatabaseTools, 'readRealmKeys' | 'disableKeyComponents'>;
}

/** What every stage of one restore compares with: read once, so before and after speak of the same thing. */
export interface KeyReferences {
  live: KeySide;
  newestVerified: KeySide;
}

const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A manifest's recorded keys as an inventory; undefined for manifests written before keys were recorded. */
export function inventoryOfManifest(manifest: Manifest): RealmKeyInventory | undefined {
  const keys = manifest.contents.keys;
  if (!keys) return undefined;
  return {
    // The manifest records realm names only; disabled realms count as realms all the same.
    realms: manifest.contents.realms.map((name) => ({ name, enabled: true })),
    keys,
    sessions: manifest.contents.sessions ?? null,
  };
}

export function manifestSide(manifest: Manifest, label: string): KeySide {
  const inventory = inventoryOfManifest(manifest);
  return inventory
    ? { label, inventory }
    : {
        label,
        unavailable: `the manifest of backup ${manifest.backupId} records no per-key details (taken before they were recorded)`,
      };
}

/**
 * The newest verified backup of the target in `store`, as a side to compare with; with `source`, only a backup of
 * that database counts (a target that once held another database's backups never lends it its keys).
 */
export async function newestVerifiedSide(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
  source?: RecordedSource,
): Promise<KeySide> {
  const label = 'the newest verified backup';
  try {
    const newest = (await readCatalog(store, keyring, target))
      .filter((entry) => entry.parsed && entry.manifest?.verified)
      .filter((entry) => !source || sameSource(entry.parsed!.source, source))
      .at(-1)?.parsed;
    if (!newest) {
      const of = source ? ` from database ${source.database}` : '';
      return { label, unavailable: `no verified backup of ${target}${of}` };
    }
    return manifestSide(newest, `backup ${newest.backupId} (the newest verified)`);
  } catch (error) {
    // The primary region may be the thing that is gone: the restore goes on, and says what it could not compare.
    return { label, unavailable: `the backups could not be listed: ${reason(error)}` };
  }
}

/** The live source (the target's replica), when it answers; an unreachable source is said, not fatal. */
export async function liveSide(ports: RestoreKeyPorts, target: string): Promise<KeySide> {
  const label = 'the live database (replica)';
  try {
    const url = await ports.databases.connectionUrl(target, 'replica');
    return { label, inventory: await ports.tools.readRealmKeys(url) };
  } catch (error) {
    // Restoring is what one does when the source is broken: any failure to read it is said, never fatal.
    return { label, unavailable: `not reachable: ${reason(error)}` };
  }
}

/**
 * Live and the newest verified backup in `store` (the primary bucket unless the restore reads the DR one) of
 * `source`, the database restored (the restore point's or the restored copy's identity), when known.
 */
export async function readKeyReferences(
  ports: RestoreKeyPorts,
  target: string,
  options: { store?: ObjectStore; source?: RecordedSource } = {},
): Promise<KeyReferences> {
  const [live, newestVerified] = await Promise.all([
    liveSide(ports, target),
    newestVerifiedSide(options.store ?? ports.primaryStore, ports.envelope, target, options.source),
  ]);
  return { live, newestVerified };
}

/** Before a restore: the restore point as its manifest recorded it (for a point in time, the nearest backup). */
export function keyReportBefore(
  references: KeyReferences,
  restorePoint: { label: string; manifest?: Manifest; unknown?: string },
): KeyChangeReport {
  const side: KeySide = restorePoint.manifest
    ? manifestSide(restorePoint.manifest, restorePoint.label)
    : { label: restorePoint.label, unavailable: restorePoint.unknown ?? 'no backup manifest describes it' };
  return buildKeyChangeReport({
    stage: 'before',
    restorePoint: side,
    ...references,
    sessions: restorePoint.manifest?.contents.sessions ?? null,
  });
}

/** After a restore: the restored database itself. */
export async function keyReportAfter(
  ports: RestoreKeyPorts,
  references: KeyReferences,
  restored: { label: string; databaseUrl: string },
): Promise<{ report: KeyChangeReport; inventory: RealmKeyInventory }> {
  const inventory = await ports.tools.readRealmKeys(restored.databaseUrl, { withSessions: true });
  const report = buildKeyChangeReport({
    stage: 'after',
    restorePoint: { label: restored.label, inventory },
    ...references,
  });
  return { report, inventory };
}

/**
 * With `disable`, sets the reintroduced key components disabled (enabled=false, never deleted) in the restored
 * database; without it, changes nothing. Either way says which realms are left without an enabled key.
 */
export async function applyKeyDecision(
  ports: RestoreKeyPorts,
  restored: { databaseUrl: string; inventory: RealmKeyInventory; report: KeyChangeReport },
  disable: boolean,
): Promise<KeyDecision> {
  if (!disable) return { disableReintroduced: false, disabled: [], leftWithoutKey: [], configRowsAdded: 0 };
  const disabled = restored.report.reintroduced.map((c) => c.key);
  const configRowsAdded =
    disabled.length > 0
      ? await ports.tools.disableKeyComponents(
          restored.databaseUrl,
          disabled.map((k) => k.componentId),
        )
      : 0;
  return {
    disableReintroduced: true,
    disabled,
    leftWithoutKey: algorithmsLeftWithoutKey(restored.inventory.keys, disabled),
    configRowsAdded,
  };
}

/**
 * The alert a drill raises when restoring to its point would bring back keys the live database no longer has (a
 * key removed or disabled after a leak would sign again); undefined when there are none or live was not reached.
 */
export function reintroducedKeysAlert(
  report: KeyChangeReport,
  drill: { target: string; drillId: string; restoredTo: string; execution?: string | null },
): Alert | undefined {
  if (report.decidedBy !== 'live' || report.reintroduced.length === 0) return undefined;
  const keys = report.reintroduced.map((c) => `${describeKey(c.key)} (${c.reason} in the live database)`);
  return {
    subject: `keycloak-backup ${drill.target}: a restore to ${drill.restoredTo} would reintroduce ${keys.length} realm key(s) no longer in the live database`,
    target: drill.target,
    step: 'drill-verify',
    error: 'ReintroducedRealmKeys',
    cause: `drill ${drill.drillId}: ${keys.join('; ')}. A restore to this point should use --disable-reintroduced-keys if these keys were removed because they leaked.`,
    execution: drill.execution ?? undefined,
    severity: 'warning',
  };
}
