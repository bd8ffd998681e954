// The key-change report of a restore: what it brings back or loses against live and the newest backup, as data and text.
import {
  type ActiveKeyChange,
  type AlgorithmLeftWithoutKey,
  compareRealmKeys,
  type KeyChange,
  type RealmKeyChanges,
  type RealmKeyInventory,
} from './realm-keys.js';
import type { RealmKey, SessionCounts } from './types.js';

/** What the restore point is compared with. */
export type KeyReference = 'live' | 'newest-verified-backup';

/** An inventory to compare with, or why there is none. */
export type KeySide =
  | { label: string; inventory: RealmKeyInventory }
  | { label: string; unavailable: string };

export interface KeyComparison {
  against: KeyReference;
  /** e.g. "the live database (replica)", "backup 20261203T0500Z (the newest verified)". */
  label: string;
  /** Realms with a change; null when the comparison could not be made (see unavailable). */
  realms: RealmKeyChanges[] | null;
  unavailable?: string;
}

export interface KeyChangeReport {
  /** before: from the manifest, before anything is written; after: from the restored database itself. */
  stage: 'before' | 'after';
  /** What is restored, e.g. "backup 20261202T0500Z" or "the recovered database". */
  restorePoint: string;
  /** Why the restore point's keys are not known yet (an older manifest); absent when they are. */
  restorePointUnknown?: string;
  /** Key components at the restore point. */
  keyCount: number;
  /** Realms at the restore point with no key component: Keycloak generates their keys at start. */
  realmsWithoutKeys: string[];
  comparisons: KeyComparison[];
  /** The comparison that decides which keys are reintroduced: live when reachable, else the newest backup. */
  decidedBy: KeyReference | null;
  /** Keys the restore brings back that the deciding comparison no longer has usable. */
  reintroduced: KeyChange[];
  /** Sessions the restore revives; null when not known. */
  sessions: SessionCounts | null;
}

export interface KeyDecision {
  /** --disable-reintroduced-keys was given. */
  disableReintroduced: boolean;
  /** The components set disabled after the restore (empty without the flag). */
  disabled: RealmKey[];
  /** Realms and algorithms that disabling left without an enabled key. */
  leftWithoutKey: AlgorithmLeftWithoutKey[];
  /** component_config rows added to say enabled=false (the comparison with the backup's counts expects them). */
  configRowsAdded: number;
}

export interface KeyReportInput {
  stage: 'before' | 'after';
  restorePoint: KeySide;
  live: KeySide;
  newestVerified: KeySide;
  /** Sessions when the restore point's inventory does not carry them (e.g. from the manifest's counts). */
  sessions?: SessionCounts | null;
}

const hasInventory = (side: KeySide): side is { label: string; inventory: RealmKeyInventory } =>
  'inventory' in side;

/** Compares the restore point with live and with the newest verified backup, and picks the deciding one. */
export function buildKeyChangeReport(input: KeyReportInput): KeyChangeReport {
  const point = input.restorePoint;
  const comparisons: KeyComparison[] = (
    [
      ['live', input.live],
      ['newest-verified-backup', input.newestVerified],
    ] as const
  ).map(([against, side]) => {
    if (!hasInventory(point))
      return { against, label: side.label, realms: null, unavailable: point.unavailable };
    if (!hasInventory(side))
      return { against, label: side.label, realms: null, unavailable: side.unavailable };
    return {
      against,
      label: side.label,
      realms: compareRealmKeys(point.inventory.keys, side.inventory.keys),
    };
  });
  const deciding = comparisons.find((c) => c.realms !== null) ?? null;
  const keys = hasInventory(point) ? point.inventory.keys : [];
  const realms = hasInventory(point) ? point.inventory.realms : [];
  return {
    stage: input.stage,
    restorePoint: point.label,
    ...(hasInventory(point) ? {} : { restorePointUnknown: point.unavailable }),
    keyCount: keys.length,
    realmsWithoutKeys: realms.filter((r) => !keys.some((k) => k.realm === r.name)).map((r) => r.name),
    comparisons,
    decidedBy: deciding?.against ?? null,
    reintroduced: deciding?.realms?.flatMap((r) => r.reintroduced) ?? [],
    sessions: (hasInventory(point) ? point.inventory.sessions : null) ?? input.sessions ?? null,
  };
}

/** `realm/name (id …, provider, algorithm, kid …, status)`: every key named the same way, never by material. */
export function describeKey(key: RealmKey): string {
  const kid = key.kid ?? (key.providerId === 'java-keystore' ? 'in the keystore file' : 'unknown');
  return `${key.realm}/${key.name} (id ${key.componentId}, ${key.providerId}, ${key.use} ${key.algorithm}, kid ${kid}, ${key.status})`;
}

const REINTRODUCED_WHY: Record<KeyChange['reason'], string> = {
  removed: 'removed since',
  disabled: 'disabled since',
  replaced: 'regenerated since (other material under the same component)',
};
const LOST_WHY: Record<KeyChange['reason'], string> = {
  removed: 'not at the restore point',
  disabled: 'disabled at the restore point',
  replaced: 'the restore point has older material under the same component',
};

const shortKey = (key: RealmKey | null, none: string) =>
  key ? `${key.name} (kid ${key.kid ?? 'unknown'})` : none;

function describeActive(change: ActiveKeyChange, kind: string): string {
  const from = shortKey(change.from, 'none');
  const to = shortKey(change.to, 'none (Keycloak generates a new key at start)');
  return `${kind} ${change.use} ${change.algorithm}: ${from} -> ${to}`;
}

function realmLines(realm: RealmKeyChanges): string[] {
  const lines = [`  realm ${realm.realm}:`];
  for (const c of realm.reintroduced)
    lines.push(`    REINTRODUCED ${describeKey(c.key)}: ${REINTRODUCED_WHY[c.reason]}`);
  for (const c of realm.lost) lines.push(`    LOST ${describeKey(c.key)}: ${LOST_WHY[c.reason]}`);
  for (const c of realm.activeChanged) lines.push(`    ${describeActive(c, 'ACTIVE KEY CHANGES')}`);
  for (const c of realm.secretsReverted) lines.push(`    ${describeActive(c, 'SECRET REVERTS')}`);
  for (const c of realm.statusChanged) {
    lines.push(`    STATUS ${describeKey(c.key)}: ${c.from} now, ${c.to} after the restore`);
  }
  return lines;
}

export function formatSessions(sessions: SessionCounts | null, stage: 'before' | 'after'): string {
  if (!sessions) return 'sessions revived: not known (no session tables recorded)';
  const verb = stage === 'before' ? 'will revive' : 'revived';
  return `the restore ${verb} ${sessions.userSessions} user session(s) and ${sessions.offlineSessions} offline session(s) (${sessions.clientSessions} client session row(s)); --clear-sessions logs everyone out`;
}

/** The report as lines for a person. */
export function formatKeyChangeReport(report: KeyChangeReport): string[] {
  const when = report.stage === 'before' ? 'before the restore' : 'after the restore';
  const lines = [`realm keys ${when}: restoring ${report.restorePoint}`];
  if (report.restorePointUnknown) {
    lines.push(`  key changes not known yet: ${report.restorePointUnknown}`);
  } else {
    lines.push(`  ${report.keyCount} key component(s) at the restore point`);
    for (const realm of report.realmsWithoutKeys) {
      lines.push(`  realm ${realm}: no key components (Keycloak generates its keys at start)`);
    }
  }
  let previous: KeyComparison | undefined;
  for (const comparison of report.comparisons) {
    const same =
      previous?.realms != null && JSON.stringify(previous.realms) === JSON.stringify(comparison.realms);
    previous = comparison;
    if (same && comparison.realms?.length) {
      lines.push(`compared with ${comparison.label}: the same changes`);
      continue;
    }
    if (comparison.realms === null) {
      if (!report.restorePointUnknown) {
        lines.push(`compared with ${comparison.label}: not compared (${comparison.unavailable})`);
      }
      continue;
    }
    if (comparison.realms.length === 0) {
      lines.push(`compared with ${comparison.label}: no key changes`);
      continue;
    }
    lines.push(`compared with ${comparison.label}:`);
    for (const realm of comparison.realms) lines.push(...realmLines(realm));
  }
  lines.push(formatSessions(report.sessions, report.stage));
  return lines;
}

/** What was done with the reintroduced keys, as lines for a person. */
export function formatKeyDecision(report: KeyChangeReport, decision: KeyDecision): string[] {
  const lines: string[] = [];
  if (!decision.disableReintroduced) {
    lines.push(
      report.reintroduced.length > 0
        ? `kept the database exactly as at the restore point: ${report.reintroduced.length} reintroduced key(s) stay enabled; pass --disable-reintroduced-keys to disable them`
        : 'kept the database exactly as at the restore point (no key is reintroduced)',
    );
    return lines;
  }
  if (decision.disabled.length === 0) {
    lines.push('--disable-reintroduced-keys: no reintroduced key to disable');
  } else {
    lines.push(
      `disabled ${decision.disabled.length} reintroduced key component(s) (enabled=false, not deleted):`,
    );
    for (const key of decision.disabled) lines.push(`  ${describeKey({ ...key, status: 'disabled' })}`);
  }
  for (const left of decision.leftWithoutKey) {
    lines.push(
      `realm ${left.realm} has no enabled ${left.use} ${left.algorithm} key left: Keycloak will generate a new key at start, and clients must refetch the realm's keys`,
    );
  }
  return lines;
}
