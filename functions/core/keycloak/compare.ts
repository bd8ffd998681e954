// The comparison rules: a restored database against the snapshot its backup recorded at dump time.
import { CHECK_NAMES, classifyTable } from './catalogue.js';
import { currentKeycloakVersion, listSome } from './health.js';
import { realmKeyInventoryOf } from './realm-keys.js';
import type { CheckResult, CountClass, KeycloakFacts, RestoreMode, SourceSnapshot } from './types.js';

/** The canonical schema text whose SHA-256 is the schema digest: sorted `table.column:type` lines. */
export function canonicalSchemaText(tables: KeycloakFacts['tables']): string {
  const lines: string[] = [];
  for (const [table, columns] of Object.entries(tables)) {
    for (const [column, type] of Object.entries(columns)) lines.push(`${table}.${column}:${type}`);
  }
  // Code-unit order, not locale order: the same on every machine.
  return lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join('\n');
}

/** `realm/providerId/componentId` → fingerprint, for every key provider with material in the database. */
export function keyFingerprintsOf(facts: KeycloakFacts): Record<string, string> {
  const realmNames = new Map(facts.realms.map((r) => [r.id, r.name]));
  const fingerprints: Record<string, string> = {};
  for (const p of facts.keyProviders) {
    if (p.fingerprint === null) continue;
    const realm = realmNames.get(p.realmId ?? '') ?? p.realmId ?? '?';
    fingerprints[`${realm}/${p.providerId}/${p.componentId}`] = p.fingerprint;
  }
  return fingerprints;
}

/** The snapshot a backup records; `facts.rowCounts` must hold every table (the probe counts all when asked). */
export function buildSourceSnapshot(facts: KeycloakFacts): SourceSnapshot {
  const tableCounts: Record<string, number> = {};
  for (const table of Object.keys(facts.tables).sort()) tableCounts[table] = facts.rowCounts[table] ?? 0;
  return {
    tableCounts,
    schemaDigest: facts.schemaDigest,
    realms: facts.realms.map((r) => r.name).sort(),
    keyFingerprints: keyFingerprintsOf(facts),
    keycloakVersion: currentKeycloakVersion(facts),
    keys: realmKeyInventoryOf(facts).keys,
    sessions: facts.sessions ?? null,
  };
}

const result = (
  name: string,
  status: CheckResult['status'],
  detail: string,
  cls: CountClass,
): CheckResult => ({
  name,
  status,
  detail,
  class: cls,
});

function difference(source: Iterable<string>, restored: Iterable<string>) {
  const a = new Set(source);
  const b = new Set(restored);
  return { missing: [...a].filter((x) => !b.has(x)).sort(), extra: [...b].filter((x) => !a.has(x)).sort() };
}

function describeDifference(what: string, missing: string[], extra: string[]): string {
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`${missing.length} ${what} missing: ${listSome(missing)}`);
  if (extra.length > 0) parts.push(`${extra.length} ${what} not in the source: ${listSome(extra)}`);
  return parts.join('; ');
}

function compareTables(facts: KeycloakFacts, source: SourceSnapshot): CheckResult {
  const { missing, extra } = difference(Object.keys(source.tableCounts), Object.keys(facts.tables));
  const total = Object.keys(source.tableCounts).length;
  return missing.length + extra.length === 0
    ? result(CHECK_NAMES.sourceTables, 'pass', `same ${total} tables as the source`, 'exact')
    : result(CHECK_NAMES.sourceTables, 'fail', describeDifference('table(s)', missing, extra), 'exact');
}

function compareColumns(facts: KeycloakFacts, source: SourceSnapshot): CheckResult {
  const short = (digest: string) => digest.slice(0, 12);
  return facts.schemaDigest === source.schemaDigest
    ? result(CHECK_NAMES.sourceColumns, 'pass', `schema digest ${short(facts.schemaDigest)} matches`, 'exact')
    : result(
        CHECK_NAMES.sourceColumns,
        'fail',
        `schema digest ${short(facts.schemaDigest)} differs from the source's ${short(source.schemaDigest)}: columns or types changed`,
        'exact',
      );
}

function compareRealms(facts: KeycloakFacts, source: SourceSnapshot): CheckResult {
  const { missing, extra } = difference(
    source.realms,
    facts.realms.map((r) => r.name),
  );
  return missing.length + extra.length === 0
    ? result(CHECK_NAMES.sourceRealms, 'pass', `same ${source.realms.length} realm(s)`, 'exact')
    : result(CHECK_NAMES.sourceRealms, 'fail', describeDifference('realm(s)', missing, extra), 'exact');
}

function compareKeys(facts: KeycloakFacts, source: SourceSnapshot): CheckResult {
  const restored = keyFingerprintsOf(facts);
  const { missing, extra } = difference(Object.keys(source.keyFingerprints), Object.keys(restored));
  const changed = Object.keys(source.keyFingerprints)
    .filter((k) => k in restored && restored[k] !== source.keyFingerprints[k])
    .sort();
  const total = Object.keys(source.keyFingerprints).length;
  if (missing.length + extra.length + changed.length === 0) {
    return result(CHECK_NAMES.sourceKeys, 'pass', `${total} key fingerprint(s) match`, 'exact');
  }
  const parts = [describeDifference('key provider(s)', missing, extra)];
  if (changed.length > 0)
    parts.push(`${changed.length} key(s) with different material: ${listSome(changed)}`);
  return result(CHECK_NAMES.sourceKeys, 'fail', parts.filter(Boolean).join('; '), 'exact');
}

function compareVersion(facts: KeycloakFacts, source: SourceSnapshot): CheckResult | undefined {
  if (source.keycloakVersion === undefined) return undefined;
  const restored = currentKeycloakVersion(facts);
  return restored === source.keycloakVersion
    ? result(CHECK_NAMES.sourceVersion, 'pass', `Keycloak ${restored} as at the source`, 'exact')
    : result(
        CHECK_NAMES.sourceVersion,
        'fail',
        `Keycloak ${restored ?? 'unknown'} restored, ${source.keycloakVersion ?? 'unknown'} at the source`,
        'exact',
      );
}

/**
 * Whether a near-class count is close enough. A dump restores its own snapshot: equal or wrong. A point-in-time
 * restore lands at another moment than the manifest's snapshot: within `tolerancePercent` of the source, and
 * at least one row of slack when the tolerance is not zero, so small tables can gain or lose a row.
 */
export function withinTolerance(
  source: number,
  restored: number,
  mode: RestoreMode,
  tolerancePercent: number,
): boolean {
  if (mode === 'dump' || tolerancePercent <= 0) return source === restored;
  const allowed = Math.max(1, (source * tolerancePercent) / 100);
  return Math.abs(restored - source) <= allowed;
}

const change = (table: string, source: number, restored: number | undefined) =>
  restored === undefined
    ? `${table} ${source} -> missing`
    : `${table} ${source} -> ${restored} (${restored - source >= 0 ? '+' : ''}${restored - source})`;

function compareCounts(
  facts: KeycloakFacts,
  source: SourceSnapshot,
  mode: RestoreMode,
  tolerancePercent: number,
): CheckResult[] {
  const tables: Record<CountClass, string[]> = { exact: [], near: [], churn: [], ignore: [] };
  for (const table of Object.keys(source.tableCounts).sort()) tables[classifyTable(table)].push(table);
  const restored = (table: string) => (table in facts.tables ? facts.rowCounts[table] : undefined);
  const changed = (list: string[]) => list.filter((t) => restored(t) !== source.tableCounts[t]);
  const describe = (list: string[]) =>
    listSome(list.map((t) => change(t, source.tableCounts[t] ?? 0, restored(t))));
  const rows = (list: string[]) => list.reduce((sum, t) => sum + (source.tableCounts[t] ?? 0), 0);

  const exactChanged = changed(tables.exact);
  const exact =
    exactChanged.length === 0
      ? result(
          CHECK_NAMES.countsExact,
          'pass',
          `${tables.exact.length} configuration tables, ${rows(tables.exact)} rows, all equal`,
          'exact',
        )
      : result(
          CHECK_NAMES.countsExact,
          'fail',
          `configuration tables differ: ${describe(exactChanged)}`,
          'exact',
        );

  const nearChanged = changed(tables.near);
  const beyond = nearChanged.filter((t) => {
    const count = restored(t);
    return count === undefined || !withinTolerance(source.tableCounts[t] ?? 0, count, mode, tolerancePercent);
  });
  const rule =
    mode === 'dump' ? 'dump restore: must be equal' : `point-in-time restore: within ${tolerancePercent}%`;
  let near: CheckResult;
  if (beyond.length > 0)
    near = result(CHECK_NAMES.countsNear, 'fail', `${describe(beyond)} (${rule})`, 'near');
  else if (nearChanged.length > 0)
    near = result(CHECK_NAMES.countsNear, 'pass', `${describe(nearChanged)} (${rule})`, 'near');
  else
    near = result(
      CHECK_NAMES.countsNear,
      'pass',
      `${tables.near.length} user-data tables, ${rows(tables.near)} rows, all equal`,
      'near',
    );

  const churnChanged = changed(tables.churn);
  const churn = result(
    CHECK_NAMES.countsChurn,
    'pass',
    churnChanged.length > 0
      ? `changed (reported, not judged): ${describe(churnChanged)}`
      : `${tables.churn.length} session/event tables, ${rows(tables.churn)} rows, unchanged`,
    'churn',
  );
  const ignored = result(
    CHECK_NAMES.countsIgnored,
    'pass',
    tables.ignore.length > 0 ? `not compared: ${tables.ignore.join(', ')}` : 'nothing ignored',
    'ignore',
  );
  return [exact, near, churn, ignored];
}

/**
 * The comparison checks. `mode` says what was restored: a dump (its counts must equal the manifest's) or a
 * point-in-time copy (user data within `tolerancePercent`). Churn is reported, never failed.
 */
export function compareWithSource(
  facts: KeycloakFacts,
  source: SourceSnapshot,
  mode: RestoreMode,
  tolerancePercent: number,
): CheckResult[] {
  const version = compareVersion(facts, source);
  return [
    ...(version ? [version] : []),
    compareTables(facts, source),
    compareColumns(facts, source),
    compareRealms(facts, source),
    compareKeys(facts, source),
    ...compareCounts(facts, source, mode, tolerancePercent),
  ];
}
