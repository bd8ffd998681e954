import { describe, expect, it } from 'vitest';
import { VerificationFailedError } from '../../functions/core/errors.js';
import {
  assertVerified,
  buildSourceSnapshot,
  CHECK_NAMES,
  type CheckResult,
  CORE_TABLES,
  changelogFileVersion,
  classifyTable,
  compareWithSource,
  evaluateHealth,
  isDerSequence,
  type KeycloakFacts,
  type KeyProviderFacts,
  keyProviderStatus,
  type SourceSnapshot,
  verifyFacts,
  withinTolerance,
} from '../../functions/core/keycloak/index.js';

const MASTER = 'master-id';
const APP = 'app-id';

const der = (name: string, prefix: string, length: number) => ({
  name,
  kind: 'der' as const,
  present: true,
  derPrefixHex: prefix,
  derLength: length,
});
const secret = (present = true) => ({
  name: 'secret',
  kind: 'secret' as const,
  present,
  derPrefixHex: null,
  derLength: null,
});

/** Key providers as a freshly created Keycloak 26 realm stores them: no enabled/active/algorithm rows for RSA. */
function realmKeys(realmId: string): KeyProviderFacts[] {
  return [
    {
      componentId: `${realmId}-rsa`,
      name: 'rsa-generated',
      providerId: 'rsa-generated',
      realmId,
      settings: { priority: '100', keyUse: 'SIG' },
      material: [der('privateKey', '308204a402010002', 1192), der('certificate', '3082029f30820187', 675)],
      fingerprint: `${realmId}-rsa-fp`.padEnd(64, '0'),
    },
    {
      componentId: `${realmId}-rsa-enc`,
      name: 'rsa-enc-generated',
      providerId: 'rsa-enc-generated',
      realmId,
      settings: { priority: '100', keyUse: 'ENC', algorithm: 'RSA-OAEP' },
      material: [der('privateKey', '308204a302010002', 1191), der('certificate', '3082029b30820183', 671)],
      fingerprint: `${realmId}-enc-fp`.padEnd(64, '0'),
    },
    {
      componentId: `${realmId}-hmac`,
      name: 'hmac-generated-hs512',
      providerId: 'hmac-generated',
      realmId,
      settings: { priority: '100', algorithm: 'HS512', kid: 'k1' },
      material: [secret()],
      fingerprint: `${realmId}-hmac-fp`.padEnd(64, '0'),
    },
    {
      componentId: `${realmId}-aes`,
      name: 'aes-generated',
      providerId: 'aes-generated',
      realmId,
      settings: { priority: '100', kid: 'k2' },
      material: [secret()],
      fingerprint: `${realmId}-aes-fp`.padEnd(64, '0'),
    },
  ];
}

/** The core tables plus the session and event tables a real database has. */
const CORE = [...CORE_TABLES, 'offline_user_session', 'event_entity'];

function healthyFacts(): KeycloakFacts {
  const tables = Object.fromEntries(CORE.map((t) => [t, { id: 'varchar(36)' }]));
  return {
    schema: 'public',
    serverVersion: '15.18',
    inRecovery: false,
    tables,
    schemaDigest: 'a'.repeat(64),
    migrations: [
      { version: '25.0.6', updateTime: 1_700_000_000 },
      { version: '26.0.8', updateTime: 1_746_299_506 },
    ],
    changelog: [
      { filename: 'META-INF/jpa-changelog-26.0.0.xml', changesets: 10 },
      { filename: 'META-INF/jpa-changelog-26.0.6.xml', changesets: 1 },
      { filename: 'META-INF/jpa-changelog-authz-4.2.0.Final.xml', changesets: 2 },
    ],
    liquibaseLocks: [
      { id: 1, locked: false, lockedBy: null },
      { id: 1000, locked: false, lockedBy: null },
    ],
    realms: [
      {
        id: APP,
        name: 'app',
        enabled: true,
        masterAdminClient: 'app-realm-client',
        masterAdminClientExists: true,
        defaultSignatureAlgorithm: null,
      },
      {
        id: MASTER,
        name: 'master',
        enabled: true,
        masterAdminClient: 'master-realm-client',
        masterAdminClientExists: true,
        defaultSignatureAlgorithm: 'RS256',
      },
    ],
    keyProviders: [...realmKeys(MASTER), ...realmKeys(APP)],
    orphans: [
      { relation: 'user_entity.realm_id -> realm.id', count: 0 },
      { relation: 'client.realm_id -> realm.id', count: 0 },
    ],
    foreignKeys: { total: 67, notValidated: [] },
    invalidIndexes: [],
    rowCounts: {
      migration_model: 2,
      databasechangelog: 148,
      databasechangeloglock: 2,
      realm: 2,
      realm_attribute: 84,
      client: 13,
      client_scope: 27,
      component: 25,
      component_config: 75,
      keycloak_role: 77,
      keycloak_group: 0,
      user_entity: 100,
      user_attribute: 40,
      credential: 100,
      user_role_mapping: 120,
      user_group_membership: 0,
      offline_user_session: 30,
      event_entity: 500,
    },
  };
}

const byName = (checks: CheckResult[], name: string) => {
  const check = checks.find((c) => c.name === name);
  if (!check) throw new Error(`no check ${name} in ${checks.map((c) => c.name).join(', ')}`);
  return check;
};

const provider = (facts: KeycloakFacts, componentId: string) =>
  facts.keyProviders.find((p) => p.componentId === componentId)!;

describe('evaluateHealth', () => {
  it('passes every check on a healthy Keycloak 26 database', () => {
    const checks = evaluateHealth(healthyFacts());
    expect(checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual([
      'core-tables',
      'not-in-recovery',
      'keycloak-version',
      'changelog-not-ahead',
      'liquibase-lock',
      'master-realm',
      'master-admin-clients',
      'signing-keys',
      'hmac-keys',
      'java-keystore-keys',
      'orphans',
      'foreign-keys-validated',
      'indexes-valid',
    ]);
  });

  it('treats a generated key without enabled/active rows as enabled', () => {
    const facts = healthyFacts();
    const rsa = provider(facts, `${MASTER}-rsa`);
    expect(rsa.settings.enabled).toBeUndefined();
    expect(keyProviderStatus(rsa)).toEqual({ enabled: true, active: true, algorithm: 'RS256', use: 'sig' });
    expect(byName(evaluateHealth(facts), CHECK_NAMES.signingKeys).status).toBe('pass');
  });

  it('warns, naming the realm, when its only RS256 key is disabled: Keycloak generates a new key at start', () => {
    const facts = healthyFacts();
    provider(facts, `${MASTER}-rsa`).settings.enabled = 'false';
    const check = byName(evaluateHealth(facts), CHECK_NAMES.signingKeys);
    expect(check.status).toBe('warn');
    expect(check.detail).toContain('Keycloak will generate a new key at start');
    expect(check.detail).toContain('realm master');
    expect(check.detail).not.toContain('realm app');
  });

  it('fails the signing-key check when the only RS256 key is passive', () => {
    const facts = healthyFacts();
    provider(facts, `${APP}-rsa`).settings.active = 'false';
    const check = byName(evaluateHealth(facts), CHECK_NAMES.signingKeys);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('realm app');
  });

  it('does not count an encryption key as a signing key', () => {
    const facts = healthyFacts();
    facts.keyProviders = facts.keyProviders.filter((p) => p.componentId !== `${MASTER}-rsa`);
    expect(byName(evaluateHealth(facts), CHECK_NAMES.signingKeys).status).toBe('fail');
  });

  it('fails when the private key does not decode to a whole DER sequence', () => {
    const facts = healthyFacts();
    provider(facts, `${MASTER}-rsa`).material[0] = der('privateKey', '308204a402010002', 1000);
    const check = byName(evaluateHealth(facts), CHECK_NAMES.signingKeys);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('privateKey is not a DER sequence');
  });

  it('fails when the private key is not base64', () => {
    const facts = healthyFacts();
    provider(facts, `${MASTER}-rsa`).material[0] = {
      ...der('privateKey', '', 0),
      derPrefixHex: null,
      derLength: null,
    };
    expect(byName(evaluateHealth(facts), CHECK_NAMES.signingKeys).detail).toContain(
      'privateKey is not base64',
    );
  });

  it('checks the key for the realm default signature algorithm, not RS256', () => {
    const facts = healthyFacts();
    facts.realms[0]!.defaultSignatureAlgorithm = 'ES256';
    const check = byName(evaluateHealth(facts), CHECK_NAMES.signingKeys);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('realm app: no enabled, active ES256 signing key');

    facts.keyProviders.push({
      componentId: 'app-ec',
      name: 'ecdsa-generated',
      providerId: 'ecdsa-generated',
      realmId: APP,
      settings: { priority: '100' },
      material: [
        der('ecdsaPrivateKey', '3041020100301306', 67),
        der('ecdsaPublicKey', '3059301306072a86', 91),
      ],
      fingerprint: 'e'.repeat(64),
    });
    expect(byName(evaluateHealth(facts), CHECK_NAMES.signingKeys).status).toBe('pass');
  });

  it('ignores disabled realms for the signing-key check', () => {
    const facts = healthyFacts();
    facts.realms[0]!.enabled = false;
    facts.keyProviders = facts.keyProviders.filter((p) => p.realmId !== APP);
    expect(byName(evaluateHealth(facts), CHECK_NAMES.signingKeys).status).toBe('pass');
  });

  it('warns when a realm has no HMAC secret', () => {
    const facts = healthyFacts();
    provider(facts, `${APP}-hmac`).material = [secret(false)];
    const checks = evaluateHealth(facts);
    expect(byName(checks, CHECK_NAMES.hmacKeys)).toMatchObject({ status: 'warn' });
    expect(byName(checks, CHECK_NAMES.hmacKeys).detail).toContain('app');
    expect(verifyFacts(facts).passed).toBe(true);
  });

  it('warns on a java-keystore provider', () => {
    const facts = healthyFacts();
    facts.keyProviders.push({
      componentId: 'ks',
      name: 'corporate-keystore',
      providerId: 'java-keystore',
      realmId: APP,
      settings: { priority: '200', keystore: '/opt/keystore.jks', keyAlias: 'kc' },
      material: [],
      fingerprint: null,
    });
    const check = byName(evaluateHealth(facts), CHECK_NAMES.javaKeystore);
    expect(check.status).toBe('warn');
    expect(check.detail).toContain('app/corporate-keystore');
  });

  it('warns, not fails, when a realm signs only with a java keystore', () => {
    const facts = healthyFacts();
    facts.keyProviders = facts.keyProviders.filter((p) => p.componentId !== `${APP}-rsa`);
    facts.keyProviders.push({
      componentId: 'ks',
      name: 'ks',
      providerId: 'java-keystore',
      realmId: APP,
      settings: {},
      material: [],
      fingerprint: null,
    });
    expect(byName(evaluateHealth(facts), CHECK_NAMES.signingKeys).status).toBe('warn');
  });

  it('fails when two enabled master realms exist', () => {
    const facts = healthyFacts();
    facts.realms.push({ ...facts.realms[1]!, id: 'other-master' });
    const check = byName(evaluateHealth(facts), CHECK_NAMES.masterRealm);
    expect(check).toMatchObject({ status: 'fail', detail: '2 enabled master realms' });
  });

  it('fails when the master realm is disabled or missing', () => {
    const disabled = healthyFacts();
    disabled.realms[1]!.enabled = false;
    expect(byName(evaluateHealth(disabled), CHECK_NAMES.masterRealm).detail).toBe(
      'the master realm is disabled',
    );
    const missing = healthyFacts();
    missing.realms = missing.realms.filter((r) => r.name !== 'master');
    expect(byName(evaluateHealth(missing), CHECK_NAMES.masterRealm).status).toBe('fail');
  });

  it('fails when a master_admin_client does not resolve', () => {
    const facts = healthyFacts();
    facts.realms[0]!.masterAdminClientExists = false;
    const check = byName(evaluateHealth(facts), CHECK_NAMES.masterAdminClients);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('app');
  });

  it('fails on an orphaned user', () => {
    const facts = healthyFacts();
    facts.orphans[0]!.count = 1;
    const check = byName(evaluateHealth(facts), CHECK_NAMES.orphans);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('user_entity.realm_id -> realm.id: 1');
  });

  it('fails when a core table is missing', () => {
    const facts = healthyFacts();
    delete facts.tables.credential;
    const check = byName(evaluateHealth(facts), CHECK_NAMES.coreTables);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('credential');
  });

  it('fails while the server is still in recovery', () => {
    const facts = healthyFacts();
    facts.inRecovery = true;
    expect(byName(evaluateHealth(facts), CHECK_NAMES.notInRecovery).status).toBe('fail');
  });

  it('reads the version from the newest migration_model row', () => {
    const report = verifyFacts(healthyFacts());
    expect(report.keycloakVersion).toBe('26.0.8');
    const empty = healthyFacts();
    empty.migrations = [];
    expect(byName(evaluateHealth(empty), CHECK_NAMES.keycloakVersion).status).toBe('fail');
  });

  it('fails when a changelog file is later than the recorded Keycloak version', () => {
    const facts = healthyFacts();
    facts.changelog!.push({ filename: 'META-INF/jpa-changelog-26.1.0.xml', changesets: 2 });
    const check = byName(evaluateHealth(facts), CHECK_NAMES.changelogNotAhead);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('jpa-changelog-26.1.0.xml');
  });

  it('fails while the Liquibase lock is held', () => {
    const facts = healthyFacts();
    facts.liquibaseLocks![0] = { id: 1, locked: true, lockedBy: 'kc-0 (10.0.0.5)' };
    const check = byName(evaluateHealth(facts), CHECK_NAMES.liquibaseLock);
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('row 1');
  });

  it('fails on unvalidated foreign keys, on none at all, and on invalid indexes', () => {
    const facts = healthyFacts();
    facts.foreignKeys = { total: 67, notValidated: ['credential.fk_pfyr0glasqyl0dei3kl69r6v0'] };
    facts.invalidIndexes = ['user_entity.idx_user_email'];
    const checks = evaluateHealth(facts);
    expect(byName(checks, CHECK_NAMES.foreignKeys).status).toBe('fail');
    expect(byName(checks, CHECK_NAMES.indexes).detail).toContain('user_entity.idx_user_email');
    facts.foreignKeys = { total: 0, notValidated: [] };
    expect(byName(evaluateHealth(facts), CHECK_NAMES.foreignKeys).status).toBe('fail');
  });
});

describe('key material and versions', () => {
  it('accepts a DER sequence whose length covers exactly the decoded bytes', () => {
    expect(isDerSequence('308204a402010002', 1192)).toBe(true);
    expect(isDerSequence('3082029f30820187', 675)).toBe(true);
    expect(isDerSequence('300d0201', 15)).toBe(true);
  });

  it('rejects a truncated value, a non-sequence, indefinite length and missing analysis', () => {
    expect(isDerSequence('308204a402010002', 1191)).toBe(false);
    expect(isDerSequence('028204a402010002', 1192)).toBe(false);
    expect(isDerSequence('3080020100', 5)).toBe(false);
    expect(isDerSequence(null, null)).toBe(false);
  });

  it('reads the Keycloak version of a changelog file name', () => {
    expect(changelogFileVersion('META-INF/jpa-changelog-26.0.6.xml')).toEqual([26, 0, 6]);
    expect(changelogFileVersion('META-INF/jpa-changelog-authz-4.2.0.Final.xml')).toEqual([4, 2, 0]);
    expect(changelogFileVersion('META-INF/db2-jpa-changelog-1.2.0.Beta1.xml')).toEqual([1, 2, 0]);
    expect(changelogFileVersion('META-INF/jpa-changelog-master.xml')).toBeNull();
  });
});

describe('classifyTable', () => {
  it('classes tables as KEYCLOAK.md says', () => {
    expect(classifyTable('realm')).toBe('exact');
    expect(classifyTable('component_config')).toBe('exact');
    expect(classifyTable('user_entity')).toBe('near');
    expect(classifyTable('credential')).toBe('near');
    expect(classifyTable('user_role_mapping')).toBe('near');
    expect(classifyTable('offline_user_session')).toBe('churn');
    expect(classifyTable('event_entity')).toBe('churn');
    expect(classifyTable('revoked_token')).toBe('churn');
    expect(classifyTable('jgroups_ping')).toBe('ignore');
    expect(classifyTable('databasechangeloglock')).toBe('ignore');
    expect(classifyTable('my_extension_table')).toBe('near');
  });
});

describe('compareWithSource', () => {
  const source = (): SourceSnapshot => buildSourceSnapshot(healthyFacts());
  const failed = (checks: CheckResult[]) => checks.filter((c) => c.status === 'fail').map((c) => c.name);

  it('passes when the restore matches its snapshot', () => {
    const checks = compareWithSource(healthyFacts(), source(), 'dump', 0);
    expect(failed(checks)).toEqual([]);
    expect(byName(checks, CHECK_NAMES.countsNear).class).toBe('near');
    expect(byName(checks, CHECK_NAMES.sourceKeys).class).toBe('exact');
  });

  it('near counts within tolerance pass for pitr but must be exact for a dump', () => {
    const facts = healthyFacts();
    facts.rowCounts.user_entity = 97;
    const dump = byName(compareWithSource(facts, source(), 'dump', 5), CHECK_NAMES.countsNear);
    expect(dump.status).toBe('fail');
    expect(dump.detail).toContain('user_entity 100 -> 97 (-3)');
    expect(byName(compareWithSource(facts, source(), 'pitr', 5), CHECK_NAMES.countsNear).status).toBe('pass');
    expect(byName(compareWithSource(facts, source(), 'pitr', 2), CHECK_NAMES.countsNear).status).toBe('fail');
  });

  it('tolerance zero means exact, and a non-zero tolerance allows one row on small tables', () => {
    expect(withinTolerance(5, 4, 'pitr', 0)).toBe(false);
    expect(withinTolerance(5, 6, 'pitr', 5)).toBe(true);
    expect(withinTolerance(5, 7, 'pitr', 5)).toBe(false);
    expect(withinTolerance(5, 4, 'dump', 50)).toBe(false);
  });

  it('churn never fails', () => {
    const facts = healthyFacts();
    facts.rowCounts.offline_user_session = 0;
    facts.rowCounts.event_entity = 9_999;
    for (const mode of ['dump', 'pitr'] as const) {
      const checks = compareWithSource(facts, source(), mode, 0);
      const churn = byName(checks, CHECK_NAMES.countsChurn);
      expect(churn).toMatchObject({ status: 'pass', class: 'churn' });
      expect(churn.detail).toContain('offline_user_session 30 -> 0');
      expect(failed(checks)).toEqual([]);
    }
  });

  it('ignores jgroups_ping and databasechangeloglock', () => {
    const facts = healthyFacts();
    facts.rowCounts.databasechangeloglock = 3;
    const checks = compareWithSource(facts, source(), 'dump', 0);
    expect(failed(checks)).toEqual([]);
    expect(byName(checks, CHECK_NAMES.countsIgnored).detail).toContain('databasechangeloglock');
  });

  it('configuration counts must be exact even for a point-in-time restore', () => {
    const facts = healthyFacts();
    facts.rowCounts.client = 14;
    const check = byName(compareWithSource(facts, source(), 'pitr', 50), CHECK_NAMES.countsExact);
    expect(check).toMatchObject({ status: 'fail', class: 'exact' });
    expect(check.detail).toContain('client 13 -> 14');
  });

  it('fails on changed key material, missing realms, another schema and missing tables', () => {
    const facts = healthyFacts();
    provider(facts, `${APP}-rsa`).fingerprint = 'f'.repeat(64);
    facts.realms = facts.realms.filter((r) => r.name === 'master');
    facts.keyProviders = facts.keyProviders.filter(
      (p) => p.realmId !== APP || p.componentId === `${APP}-rsa`,
    );
    facts.schemaDigest = 'b'.repeat(64);
    delete facts.tables.event_entity;
    const checks = compareWithSource(facts, source(), 'pitr', 50);
    expect(failed(checks)).toEqual(
      expect.arrayContaining([
        CHECK_NAMES.sourceKeys,
        CHECK_NAMES.sourceRealms,
        CHECK_NAMES.sourceColumns,
        CHECK_NAMES.sourceTables,
      ]),
    );
    expect(byName(checks, CHECK_NAMES.sourceRealms).detail).toContain('1 realm(s) missing: app');
    expect(byName(checks, CHECK_NAMES.sourceTables).detail).toContain('event_entity');
    expect(byName(checks, CHECK_NAMES.countsChurn).status).toBe('pass');
  });

  it('records the snapshot in the manifest shape, without key material', () => {
    const snapshot = source();
    expect(snapshot.realms).toEqual(['app', 'master']);
    expect(snapshot.keycloakVersion).toBe('26.0.8');
    expect(snapshot.keyFingerprints['master/rsa-generated/master-id-rsa']).toMatch(/^master-id-rsa-fp0+$/);
    expect(Object.keys(snapshot.tableCounts)).toHaveLength(CORE.length);
  });

  it('fails the report as a whole only on failures', () => {
    const facts = healthyFacts();
    facts.rowCounts.user_entity = 99;
    expect(verifyFacts(facts, { source: source(), mode: 'pitr', tolerancePercent: 5 }).passed).toBe(true);
    const dump = verifyFacts(facts, { source: source(), mode: 'dump' });
    expect(dump.passed).toBe(false);
    expect(dump.inventory).toEqual({ realms: 2, users: 99, credentials: 100, clients: 13, keyProviders: 8 });
  });

  it('raises VerificationFailedError naming the failed checks, and nothing for warnings', () => {
    const facts = healthyFacts();
    facts.orphans[0]!.count = 2;
    provider(facts, `${APP}-hmac`).material = [secret(false)];
    const report = verifyFacts(facts);
    expect(() => assertVerified(report, 'backup 20261122T2300Z')).toThrow(VerificationFailedError);
    try {
      assertVerified(report, 'backup 20261122T2300Z');
    } catch (error) {
      expect((error as VerificationFailedError).failedChecks).toEqual([CHECK_NAMES.orphans]);
      expect((error as Error).message).toContain('user_entity.realm_id -> realm.id: 2');
    }
    expect(() => assertVerified(verifyFacts(healthyFacts()), 'x')).not.toThrow();
  });
});
