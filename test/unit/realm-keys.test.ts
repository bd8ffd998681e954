import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { derivedKid } from '../../functions/adapters/postgres/keycloak-probe.js';
import {
  activeKeys,
  algorithmsLeftWithoutKey,
  buildKeyChangeReport,
  CHECK_NAMES,
  compareRealmKeys,
  evaluateHealth,
  formatKeyChangeReport,
  formatKeyDecision,
  type KeycloakFacts,
  type KeyProviderFacts,
  kidOf,
  type RealmKey,
  type RealmKeyInventory,
  realmKeyInventoryOf,
} from '../../functions/core/keycloak/index.js';
import { newestVerifiedSide, readKeyReferences } from '../../functions/core/restore-keys.js';
import { writeManifest } from '../../functions/core/stored-backups.js';
import { sampleManifest, testEnvelope } from '../support/manifests.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';

const fp = (seed: string) => seed.padEnd(64, '0').slice(0, 64);

function key(overrides: Partial<RealmKey> & Pick<RealmKey, 'componentId'>): RealmKey {
  return {
    realm: 'app',
    name: overrides.componentId,
    providerId: 'rsa-generated',
    algorithm: 'RS256',
    use: 'sig',
    kid: `kid-${overrides.componentId}`,
    status: 'active',
    priority: 100,
    fingerprint: fp(`a${overrides.componentId.length}`),
    ...overrides,
  };
}

const inventory = (keys: RealmKey[], realms = ['app']): RealmKeyInventory => ({
  realms: realms.map((name) => ({ name, enabled: true })),
  keys,
  sessions: null,
});

describe('compareRealmKeys', () => {
  it('names a key removed since as reintroduced and a key created since as lost, with the active key change', () => {
    const old = key({ componentId: 'rsa-old', fingerprint: fp('1') });
    const fresh = key({ componentId: 'rsa-new', fingerprint: fp('2') });
    const [realm, ...others] = compareRealmKeys([old], [fresh]);
    expect(others).toEqual([]);
    expect(realm?.reintroduced).toEqual([{ key: old, reason: 'removed' }]);
    expect(realm?.lost).toEqual([{ key: fresh, reason: 'removed' }]);
    expect(realm?.activeChanged).toEqual([{ use: 'sig', algorithm: 'RS256', from: fresh, to: old }]);
    expect(realm?.secretsReverted).toEqual([]);
  });

  it('after a rotation without a leak: the old key is no reintroduction, it turns active again, the new is lost', () => {
    const old = key({ componentId: 'rsa-old', fingerprint: fp('1') });
    const oldPassive = { ...old, status: 'passive' as const };
    const fresh = key({ componentId: 'rsa-new', fingerprint: fp('2'), priority: 100 });
    const [realm] = compareRealmKeys([old], [oldPassive, fresh]);
    expect(realm?.reintroduced).toEqual([]);
    expect(realm?.lost.map((c) => c.key.componentId)).toEqual(['rsa-new']);
    expect(realm?.statusChanged).toEqual([{ key: old, from: 'passive', to: 'active' }]);
    expect(realm?.activeChanged.map((c) => [c.from?.componentId, c.to?.componentId])).toEqual([
      ['rsa-new', 'rsa-old'],
    ]);
  });

  it('counts a key disabled since as reintroduced (reason disabled), and a disabled key at the restore point as nothing', () => {
    const leaked = key({ componentId: 'leaked' });
    const [realm] = compareRealmKeys([leaked], [{ ...leaked, status: 'disabled' }]);
    expect(realm?.reintroduced).toEqual([{ key: leaked, reason: 'disabled' }]);
    expect(realm?.lost).toEqual([]);
    expect(compareRealmKeys([{ ...leaked, status: 'disabled' }], [])).toEqual([]);
  });

  it('sees regenerated material under the same component as a reintroduced and a lost key', () => {
    const before = key({
      componentId: 'hmac',
      providerId: 'hmac-generated',
      algorithm: 'HS512',
      fingerprint: fp('1'),
    });
    const now = { ...before, fingerprint: fp('2'), kid: 'kid-regenerated' };
    const [realm] = compareRealmKeys([before], [now]);
    expect(realm?.reintroduced).toEqual([{ key: before, reason: 'replaced' }]);
    expect(realm?.lost).toEqual([{ key: now, reason: 'replaced' }]);
    expect(realm?.secretsReverted).toEqual([{ use: 'sig', algorithm: 'HS512', from: now, to: before }]);
    expect(realm?.activeChanged).toEqual([]);
  });

  it('keeps realms apart and leaves out the realms without a change', () => {
    const master = key({ realm: 'master', componentId: 'm' });
    const app = key({ realm: 'app', componentId: 'a' });
    const changes = compareRealmKeys([master, app], [master]);
    expect(changes.map((c) => c.realm)).toEqual(['app']);
  });

  it('a restore to an identical key set changes nothing', () => {
    const keys = [key({ componentId: 'a' }), key({ componentId: 'b', status: 'passive' })];
    expect(compareRealmKeys(keys, keys)).toEqual([]);
  });
});

describe('activeKeys', () => {
  it('picks the highest priority, then the smallest component id, as Keycloak does', () => {
    const keys = [
      key({ componentId: 'b', priority: 100 }),
      key({ componentId: 'a', priority: 100 }),
      key({ componentId: 'c', priority: 200, status: 'passive' }),
      key({ componentId: 'd', priority: 50 }),
    ];
    expect(activeKeys(keys).get('app\u0000sig\u0000RS256')?.componentId).toBe('a');
  });
});

describe('algorithmsLeftWithoutKey', () => {
  it('names the realm and algorithm left with no enabled key, and not one that keeps a passive key', () => {
    const rsa = key({ componentId: 'rsa' });
    const hmac = key({ componentId: 'hmac', providerId: 'hmac-generated', algorithm: 'HS512' });
    const hmacPassive = key({
      componentId: 'hmac-2',
      providerId: 'hmac-generated',
      algorithm: 'HS512',
      status: 'passive',
    });
    expect(algorithmsLeftWithoutKey([rsa, hmac, hmacPassive], [rsa, hmac])).toEqual([
      { realm: 'app', use: 'sig', algorithm: 'RS256' },
    ]);
  });
});

describe('buildKeyChangeReport', () => {
  const old = key({ componentId: 'rsa-old', fingerprint: fp('1') });
  const fresh = key({ componentId: 'rsa-new', fingerprint: fp('2') });

  it('decides with the live database when it answers, and reports the newest backup beside it', () => {
    const report = buildKeyChangeReport({
      stage: 'after',
      restorePoint: { label: 'backup A', inventory: inventory([old], ['app', 'empty']) },
      live: { label: 'live', inventory: inventory([fresh]) },
      newestVerified: { label: 'backup B', inventory: inventory([old]) },
    });
    expect(report.decidedBy).toBe('live');
    expect(report.reintroduced).toEqual([{ key: old, reason: 'removed' }]);
    expect(report.comparisons.map((c) => [c.against, c.realms?.length])).toEqual([
      ['live', 1],
      ['newest-verified-backup', 0],
    ]);
    expect(report.realmsWithoutKeys).toEqual(['empty']);
  });

  it('says "the same changes" instead of listing them twice, and "none" for an algorithm live has no key for', () => {
    const report = buildKeyChangeReport({
      stage: 'after',
      restorePoint: { label: 'backup A', inventory: inventory([old]) },
      live: { label: 'live', inventory: inventory([]) },
      newestVerified: { label: 'backup B', inventory: inventory([]) },
    });
    const text = formatKeyChangeReport(report);
    expect(text).toContain('compared with backup B: the same changes');
    expect(text).toContain('    ACTIVE KEY CHANGES sig RS256: none -> rsa-old (kid kid-rsa-old)');
    expect(text.filter((line) => line.includes('REINTRODUCED'))).toHaveLength(1);
  });

  it('decides with the newest verified backup when live is not reachable, and says why', () => {
    const report = buildKeyChangeReport({
      stage: 'before',
      restorePoint: { label: 'backup A', inventory: inventory([old]) },
      live: { label: 'live', unavailable: 'not reachable: ECONNREFUSED' },
      newestVerified: { label: 'backup B', inventory: inventory([fresh]) },
    });
    expect(report.decidedBy).toBe('newest-verified-backup');
    expect(report.reintroduced.map((c) => c.key.componentId)).toEqual(['rsa-old']);
    const text = formatKeyChangeReport(report).join('\n');
    expect(text).toContain('compared with live: not compared (not reachable: ECONNREFUSED)');
    expect(text).toContain(
      'REINTRODUCED app/rsa-old (id rsa-old, rsa-generated, sig RS256, kid kid-rsa-old, active): removed since',
    );
    expect(text).toContain(
      'ACTIVE KEY CHANGES sig RS256: rsa-new (kid kid-rsa-new) -> rsa-old (kid kid-rsa-old)',
    );
    // Named by kid, never by material or its fingerprint.
    expect(text).not.toContain(fp('1'));
  });

  it('says the keys are not known yet when the manifest recorded none', () => {
    const report = buildKeyChangeReport({
      stage: 'before',
      restorePoint: { label: 'backup A', unavailable: 'the manifest records no per-key details' },
      live: { label: 'live', inventory: inventory([fresh]) },
      newestVerified: { label: 'backup B', inventory: inventory([fresh]) },
    });
    expect(report.decidedBy).toBeNull();
    expect(formatKeyChangeReport(report)).toContain(
      '  key changes not known yet: the manifest records no per-key details',
    );
  });

  it('says the database is kept as at the restore point without the flag, and what was disabled with it', () => {
    const report = buildKeyChangeReport({
      stage: 'after',
      restorePoint: { label: 'backup A', inventory: inventory([old]) },
      live: { label: 'live', inventory: inventory([fresh]) },
      newestVerified: { label: 'backup B', unavailable: 'none' },
    });
    expect(
      formatKeyDecision(report, {
        disableReintroduced: false,
        disabled: [],
        leftWithoutKey: [],
        configRowsAdded: 0,
      }),
    ).toEqual([
      'kept the database exactly as at the restore point: 1 reintroduced key(s) stay enabled; pass --disable-reintroduced-keys to disable them',
    ]);
    const lines = formatKeyDecision(report, {
      disableReintroduced: true,
      disabled: [old],
      leftWithoutKey: [{ realm: 'app', use: 'sig', algorithm: 'RS256' }],
      configRowsAdded: 1,
    });
    expect(lines).toContain(
      '  app/rsa-old (id rsa-old, rsa-generated, sig RS256, kid kid-rsa-old, disabled)',
    );
    expect(lines).toContain(
      "realm app has no enabled sig RS256 key left: Keycloak will generate a new key at start, and clients must refetch the realm's keys",
    );
  });
});

const provider = (overrides: Partial<KeyProviderFacts>): KeyProviderFacts => ({
  componentId: 'c1',
  name: 'rsa-generated',
  providerId: 'rsa-generated',
  realmId: 'app-id',
  settings: { priority: '100' },
  material: [],
  fingerprint: fp('1'),
  ...overrides,
});

describe('realm keys from the probe', () => {
  it('takes the kid from the kid row when there is one, else from the public key', () => {
    expect(kidOf(provider({ settings: { kid: 'stored' }, derivedKid: 'derived' }))).toBe('stored');
    expect(kidOf(provider({ derivedKid: 'derived' }))).toBe('derived');
    expect(kidOf(provider({}))).toBeNull();
  });

  it('reads status, algorithm and priority with Keycloak defaults, and a keystore without fingerprint', () => {
    const facts = {
      realms: [{ id: 'app-id', name: 'app', enabled: true }],
      keyProviders: [
        provider({ componentId: 'a', settings: {} }),
        provider({ componentId: 'b', settings: { active: 'false', priority: '7' } }),
        provider({
          componentId: 'c',
          providerId: 'aes-generated',
          name: 'aes',
          settings: { enabled: 'false' },
        }),
        provider({ componentId: 'd', providerId: 'java-keystore', name: 'ks', fingerprint: null }),
      ],
      sessions: null,
    } as unknown as Pick<KeycloakFacts, 'realms' | 'keyProviders' | 'sessions'>;
    const keys = realmKeyInventoryOf(facts).keys.map((k) => [
      k.componentId,
      k.status,
      k.algorithm,
      k.use,
      k.priority,
    ]);
    expect(keys).toEqual([
      ['c', 'disabled', 'AES', 'enc', 0],
      ['d', 'active', 'RS256', 'sig', 100],
      ['a', 'active', 'RS256', 'sig', 0],
      ['b', 'passive', 'RS256', 'sig', 7],
    ]);
  });
});

describe('signing-keys check after reintroduced keys are disabled', () => {
  const base = (enabled: string | undefined): KeycloakFacts =>
    ({
      realms: [
        {
          id: 'app-id',
          name: 'app',
          enabled: true,
          masterAdminClient: null,
          masterAdminClientExists: null,
          defaultSignatureAlgorithm: null,
        },
      ],
      keyProviders: [provider({ settings: enabled === undefined ? {} : { enabled } })],
      tables: {},
      migrations: [],
      changelog: [],
      liquibaseLocks: [],
      orphans: [],
      foreignKeys: { total: 1, notValidated: [] },
      invalidIndexes: [],
      rowCounts: {},
      schema: 'public',
      serverVersion: '15',
      inRecovery: false,
      schemaDigest: '',
    }) as KeycloakFacts;
  const signing = (facts: KeycloakFacts) =>
    evaluateHealth(facts).find((c) => c.name === CHECK_NAMES.signingKeys);

  it('warns, not fails, when every signing key of the algorithm is disabled: Keycloak generates one at start', () => {
    expect(signing(base('false'))).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('Keycloak will generate a new key at start'),
    });
  });

  it('still fails when the realm has no signing key component at all', () => {
    const facts = { ...base(undefined), keyProviders: [] };
    expect(signing(facts)?.status).toBe('fail');
  });
});

describe('readKeyReferences', () => {
  it('says the live database is not reachable instead of failing the restore', async () => {
    const ports = {
      primaryStore: new MemoryObjectStore({ bucket: 'b', region: 'r' }),
      envelope: testEnvelope(),
      databases: {
        connectionUrl: async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        },
      },
      tools: { readRealmKeys: async () => inventory([]), disableKeyComponents: async () => 0 },
    };
    const references = await readKeyReferences(ports, 'keycloak');
    expect(references.live).toEqual({
      label: 'the live database (replica)',
      unavailable: 'not reachable: connect ECONNREFUSED 127.0.0.1:5432',
    });
    expect(references.newestVerified).toEqual({
      label: 'the newest verified backup',
      unavailable: 'no verified backup of keycloak',
    });
  });
});

describe('the newest verified backup as a key reference', () => {
  const alpha = {
    systemIdentifier: '7000000000000000001',
    database: 'keycloak',
    databaseOid: 16384,
    serverVersion: '15.18',
    endpoint: '127.0.0.1:5433/keycloak',
  };
  /** A verified manifest of `source` whose recorded keys are `keys`. */
  const verifiedBackup = (backupId: string, source: typeof alpha, keys: RealmKey[]) => {
    const manifest = sampleManifest('keycloak', backupId);
    return {
      ...manifest,
      source: { ...manifest.source, ...source },
      contents: { ...manifest.contents, keys },
      verification: [
        { at: manifest.finishedAt, level: 'archive' as const, passed: true, checks: [], durationMs: 1 },
      ],
    };
  };

  it('compares only with a backup of the same database, never with a newer one of another under the target', async () => {
    const store = new MemoryObjectStore({ bucket: 'b', region: 'r' });
    const envelope = testEnvelope();
    const own = key({ componentId: 'own' });
    const foreign = key({ componentId: 'foreign' });
    await writeManifest(store, envelope, verifiedBackup('20261123T1000Z', alpha, [own]));
    // Newer, verified, same target and database name: another cluster's database (a target reused by mistake).
    await writeManifest(
      store,
      envelope,
      verifiedBackup('20261123T1100Z', { ...alpha, systemIdentifier: '7000000000000000002' }, [foreign]),
    );

    const side = await newestVerifiedSide(store, envelope, 'keycloak', alpha);
    expect(side).toMatchObject({
      label: 'backup 20261123T1000Z (the newest verified)',
      inventory: { keys: [expect.objectContaining({ componentId: 'own' })] },
    });

    const ports = {
      primaryStore: store,
      envelope,
      databases: { connectionUrl: async () => 'postgres://replica@127.0.0.1:1/keycloak' },
      tools: { readRealmKeys: async () => inventory([own]), disableKeyComponents: async () => 0 },
    };
    const references = await readKeyReferences(ports, 'keycloak', {
      source: { ...alpha, databaseOid: 16385 },
    });
    expect(references.newestVerified).toEqual({
      label: 'the newest verified backup',
      unavailable: 'no verified backup of keycloak from database keycloak',
    });
  });
});

describe('derivedKid', () => {
  it("is base64url SHA-256 of a stored public key's X.509 encoding (ecdsa-generated keeps ecdsaPublicKey)", () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const expected = createHash('sha256').update(spki).digest('base64url');
    expect(derivedKid([{ name: 'ecdsaPublicKey', value: spki.toString('base64') }])).toBe(expected);
    expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('is null when nothing decodes, never a guess', () => {
    expect(derivedKid([])).toBeNull();
    expect(derivedKid([{ name: 'certificate', value: 'bm90IGEgY2VydGlmaWNhdGU=' }])).toBeNull();
  });
});
