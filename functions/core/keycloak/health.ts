// The standalone rules: is this restored database a healthy Keycloak database, judged from its facts alone.
import { CHECK_NAMES, CORE_TABLES } from './catalogue.js';
import { isExternalKeyProvider, isHmacProvider, keyMaterialProblem, keyProviderStatus } from './keys.js';
import type { CheckResult, KeycloakFacts, KeyProviderFacts, RealmFacts } from './types.js';
import { changelogFileVersion, compareVersions, formatVersion, parseVersion } from './versions.js';

const pass = (name: string, detail: string): CheckResult => ({ name, status: 'pass', detail });
const warn = (name: string, detail: string): CheckResult => ({ name, status: 'warn', detail });
const fail = (name: string, detail: string): CheckResult => ({ name, status: 'fail', detail });

/** Lists at most `max` items, then says how many more: details stay one readable line. */
export function listSome(items: readonly string[], max = 10): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/** The current Keycloak version: the migration_model row with the newest update_time. */
export function currentKeycloakVersion(facts: KeycloakFacts): string | null {
  if (!facts.migrations || facts.migrations.length === 0) return null;
  const newest = [...facts.migrations].sort(
    (a, b) =>
      b.updateTime - a.updateTime ||
      compareVersions(parseVersion(b.version) ?? [], parseVersion(a.version) ?? []),
  )[0];
  return newest?.version ?? null;
}

function checkCoreTables(facts: KeycloakFacts): CheckResult {
  const missing = CORE_TABLES.filter((t) => !(t in facts.tables));
  const total = Object.keys(facts.tables).length;
  if (missing.length > 0) {
    return fail(
      CHECK_NAMES.coreTables,
      `schema ${facts.schema}: ${missing.length} core table(s) missing: ${listSome(missing)} (${total} tables found)`,
    );
  }
  return pass(CHECK_NAMES.coreTables, `all ${CORE_TABLES.length} core tables present (${total} tables)`);
}

function checkRecovery(facts: KeycloakFacts): CheckResult {
  return facts.inRecovery
    ? fail(
        CHECK_NAMES.notInRecovery,
        'the server is in recovery: a standby or a point-in-time copy that was not promoted',
      )
    : pass(CHECK_NAMES.notInRecovery, `PostgreSQL ${facts.serverVersion}, not in recovery`);
}

function checkVersion(facts: KeycloakFacts): CheckResult {
  if (facts.migrations === null) return fail(CHECK_NAMES.keycloakVersion, 'migration_model table missing');
  const version = currentKeycloakVersion(facts);
  if (!version) return fail(CHECK_NAMES.keycloakVersion, 'migration_model has no rows');
  if (!parseVersion(version)) return fail(CHECK_NAMES.keycloakVersion, `migration_model version unreadable`);
  return pass(
    CHECK_NAMES.keycloakVersion,
    `Keycloak ${version} (${facts.migrations.length} migration row(s))`,
  );
}

function checkChangelog(facts: KeycloakFacts): CheckResult {
  const name = CHECK_NAMES.changelogNotAhead;
  if (facts.changelog === null) return fail(name, 'databasechangelog table missing');
  const changesets = facts.changelog.reduce((sum, f) => sum + f.changesets, 0);
  if (changesets === 0) return fail(name, 'databasechangelog has no rows');
  const version = parseVersion(currentKeycloakVersion(facts) ?? '');
  let newest: { filename: string; version: number[] } | undefined;
  for (const file of facts.changelog) {
    const v = changelogFileVersion(file.filename);
    if (v && (!newest || compareVersions(v, newest.version) > 0))
      newest = { filename: file.filename, version: v };
  }
  if (!newest) return warn(name, `${changesets} changesets, none in a versioned changelog file`);
  const file = newest.filename.split('/').at(-1);
  if (!version)
    return fail(name, `${changesets} changesets, newest ${file}; no Keycloak version to compare with`);
  if (compareVersions(newest.version, version) > 0) {
    return fail(
      name,
      `newest changelog ${file} (${formatVersion(newest.version)}) is later than Keycloak ${formatVersion(version)}: an upgrade did not finish`,
    );
  }
  return pass(name, `${changesets} changesets, newest ${file} not later than ${formatVersion(version)}`);
}

function checkLock(facts: KeycloakFacts): CheckResult {
  const name = CHECK_NAMES.liquibaseLock;
  if (facts.liquibaseLocks === null) return fail(name, 'databasechangeloglock table missing');
  const held = facts.liquibaseLocks.filter((l) => l.locked);
  if (held.length > 0) {
    const who = held.map((l) => `row ${l.id}${l.lockedBy ? ` by ${l.lockedBy}` : ''}`);
    return fail(name, `Liquibase lock held (${listSome(who)}): Keycloak would wait for it at start-up`);
  }
  return pass(name, `${facts.liquibaseLocks.length} lock row(s), none held`);
}

function checkMasterRealm(facts: KeycloakFacts): CheckResult {
  const masters = facts.realms.filter((r) => r.name === 'master');
  const enabled = masters.filter((r) => r.enabled);
  if (enabled.length === 1)
    return pass(CHECK_NAMES.masterRealm, `one enabled master realm (${facts.realms.length} realms)`);
  if (enabled.length > 1) return fail(CHECK_NAMES.masterRealm, `${enabled.length} enabled master realms`);
  return fail(
    CHECK_NAMES.masterRealm,
    masters.length > 0 ? 'the master realm is disabled' : 'no master realm',
  );
}

function checkMasterAdminClients(facts: KeycloakFacts): CheckResult {
  const dangling = facts.realms.filter(
    (r) => r.masterAdminClient !== null && r.masterAdminClientExists === false,
  );
  const unset = facts.realms.filter((r) => r.masterAdminClient === null);
  if (dangling.length > 0) {
    return fail(
      CHECK_NAMES.masterAdminClients,
      `master_admin_client does not resolve to a client for realm(s) ${listSome(dangling.map((r) => r.name))}`,
    );
  }
  if (unset.length > 0) {
    return warn(
      CHECK_NAMES.masterAdminClients,
      `realm(s) without master_admin_client: ${listSome(unset.map((r) => r.name))}`,
    );
  }
  return pass(
    CHECK_NAMES.masterAdminClients,
    `${facts.realms.length} realm(s), every master_admin_client resolves`,
  );
}

function providersByRealm(facts: KeycloakFacts): Map<string, KeyProviderFacts[]> {
  const byRealm = new Map<string, KeyProviderFacts[]>();
  for (const p of facts.keyProviders) {
    if (p.realmId === null) continue;
    byRealm.set(p.realmId, [...(byRealm.get(p.realmId) ?? []), p]);
  }
  return byRealm;
}

/** The realm's signing outcome: ok, only covered by a keystore outside the database, or why it fails. */
function realmSigning(
  realm: RealmFacts,
  providers: KeyProviderFacts[],
): { status: 'ok' | 'external' | 'generated' | 'bad'; why: string } {
  const algorithm = realm.defaultSignatureAlgorithm?.trim() || 'RS256';
  const signing = providers.filter((p) => {
    const s = keyProviderStatus(p);
    return s.use === 'sig' && s.algorithm === algorithm;
  });
  const candidates = signing.filter((p) => {
    const s = keyProviderStatus(p);
    return s.enabled && s.active;
  });
  if (candidates.length === 0 && signing.length > 0 && signing.every((p) => !keyProviderStatus(p).enabled)) {
    // Disabled on purpose (a leaked key disabled after a restore): Keycloak generates a new key when it starts.
    return {
      status: 'generated',
      why: `realm ${realm.name}: every ${algorithm} signing key is disabled: Keycloak will generate a new key at start, and clients must refetch the realm's keys`,
    };
  }
  if (candidates.length === 0) {
    return { status: 'bad', why: `realm ${realm.name}: no enabled, active ${algorithm} signing key` };
  }
  const inDatabase = candidates.filter((p) => !isExternalKeyProvider(p));
  if (inDatabase.some((p) => keyMaterialProblem(p) === null)) return { status: 'ok', why: '' };
  if (inDatabase.length < candidates.length) {
    return { status: 'external', why: `realm ${realm.name}: ${algorithm} key only in a java keystore` };
  }
  const problems = inDatabase.map((p) => `${p.name}: ${keyMaterialProblem(p)}`);
  return {
    status: 'bad',
    why: `realm ${realm.name}: ${algorithm} key material unusable (${listSome(problems, 3)})`,
  };
}

function checkSigningKeys(facts: KeycloakFacts): CheckResult {
  const byRealm = providersByRealm(facts);
  const enabled = facts.realms.filter((r) => r.enabled);
  const outcomes = enabled.map((r) => realmSigning(r, byRealm.get(r.id) ?? []));
  const bad = outcomes.filter((o) => o.status === 'bad');
  const warnings = outcomes.filter((o) => o.status === 'external' || o.status === 'generated');
  if (bad.length > 0)
    return fail(
      CHECK_NAMES.signingKeys,
      listSome(
        bad.map((o) => o.why),
        5,
      ),
    );
  if (warnings.length > 0)
    return warn(
      CHECK_NAMES.signingKeys,
      listSome(
        warnings.map((o) => o.why),
        5,
      ),
    );
  return pass(
    CHECK_NAMES.signingKeys,
    `${enabled.length} enabled realm(s), each with an enabled, active signing key with decodable material`,
  );
}

function checkHmacKeys(facts: KeycloakFacts): CheckResult {
  const byRealm = providersByRealm(facts);
  const without = facts.realms.filter(
    (r) =>
      !(byRealm.get(r.id) ?? []).some((p) => {
        const s = keyProviderStatus(p);
        return isHmacProvider(p) && s.enabled && s.active && keyMaterialProblem(p) === null;
      }),
  );
  if (without.length > 0) {
    return warn(
      CHECK_NAMES.hmacKeys,
      `realm(s) without a usable HMAC secret: ${listSome(without.map((r) => r.name))}`,
    );
  }
  return pass(CHECK_NAMES.hmacKeys, `${facts.realms.length} realm(s), each with an HMAC secret`);
}

function checkJavaKeystores(facts: KeycloakFacts): CheckResult {
  const realmNames = new Map(facts.realms.map((r) => [r.id, r.name]));
  const keystores = facts.keyProviders.filter(isExternalKeyProvider);
  if (keystores.length > 0) {
    const where = keystores.map((p) => `${realmNames.get(p.realmId ?? '') ?? p.realmId}/${p.name}`);
    return warn(
      CHECK_NAMES.javaKeystore,
      `${keystores.length} java-keystore provider(s) keep their keys in files the database backup does not cover: ${listSome(where)}`,
    );
  }
  return pass(
    CHECK_NAMES.javaKeystore,
    `${facts.keyProviders.length} key provider(s), none in a java keystore`,
  );
}

function checkOrphans(facts: KeycloakFacts): CheckResult {
  const found = facts.orphans.filter((o) => o.count > 0);
  if (found.length > 0) {
    const total = found.reduce((sum, o) => sum + o.count, 0);
    return fail(
      CHECK_NAMES.orphans,
      `${total} orphaned row(s): ${listSome(found.map((o) => `${o.relation}: ${o.count}`))}`,
    );
  }
  return pass(
    CHECK_NAMES.orphans,
    `${facts.orphans.length} relations without foreign keys checked, no orphans`,
  );
}

function checkForeignKeys(facts: KeycloakFacts): CheckResult {
  const { total, notValidated } = facts.foreignKeys;
  if (notValidated.length > 0) {
    return fail(
      CHECK_NAMES.foreignKeys,
      `${notValidated.length} of ${total} foreign keys not validated: ${listSome(notValidated)}`,
    );
  }
  if (total === 0)
    return fail(CHECK_NAMES.foreignKeys, 'no foreign keys at all: the restore lost its constraints');
  return pass(CHECK_NAMES.foreignKeys, `${total} foreign keys, all validated`);
}

function checkIndexes(facts: KeycloakFacts): CheckResult {
  if (facts.invalidIndexes.length > 0) {
    return fail(
      CHECK_NAMES.indexes,
      `${facts.invalidIndexes.length} invalid index(es): ${listSome(facts.invalidIndexes)}`,
    );
  }
  return pass(CHECK_NAMES.indexes, 'no invalid indexes');
}

/** The standalone checks, in a stable order. */
export function evaluateHealth(facts: KeycloakFacts): CheckResult[] {
  return [
    checkCoreTables(facts),
    checkRecovery(facts),
    checkVersion(facts),
    checkChangelog(facts),
    checkLock(facts),
    checkMasterRealm(facts),
    checkMasterAdminClients(facts),
    checkSigningKeys(facts),
    checkHmacKeys(facts),
    checkJavaKeystores(facts),
    checkOrphans(facts),
    checkForeignKeys(facts),
    checkIndexes(facts),
  ];
}
