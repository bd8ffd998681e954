// Realm keys across a restore, on real databases: back up the fixture, rotate and remove keys on the source as an
// operator would, back up again, restore the first backup, and check what the report names and what gets disabled.
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RestoreKeyReport } from '../../cli/realm-keys.js';
import { prepareRestoreTarget } from '../../functions/adapters/postgres/restore-target.js';
import { dumpStep, restoreStep, verifyStep } from '../../functions/core/backup-steps.js';
import type { KeyChange, RealmKey } from '../../functions/core/keycloak/index.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readManifest } from '../../functions/core/stored-backups.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import { retentionPolicy, type Services } from '../../functions/platform/services.js';
import { useTestStack } from '../support/stack.js';

const run = promisify(execFile);
const ctx = useTestStack();
let services: Services;
let scratch: string;

const MASTER = '071eec07-9d0a-411e-bf21-78c3daf9b724';
const APP = 'betterGR';
/** The fixture's key components, with the kid each has in its realm's JWKS. The RSA kids were computed apart from
 * the code under test, with openssl from the certificate rows (and agree with the public half of privateKey):
 * base64 -d | openssl x509 -inform DER -pubkey -noout | openssl pkey -pubin -outform DER | sha256 | base64url. */
const FIXTURE = {
  masterRsa: {
    id: '704c4d15-d5e0-48d6-82de-2e79606b0feb',
    kid: 'eDewpfDQkHaCDeQl-OqEbtcr_rV3cJ4wYNGFM_6DPc4',
  },
  masterRsaEnc: {
    id: '3e098825-646c-416e-a306-578ee9c2a546',
    kid: '48vKYNCVFKpJSK8Kz-MpZ1x4M-8QRHzqPmN23Acyqwo',
  },
  masterHmac: { id: 'b5574b05-211f-4e58-8eef-63b989ba6cdf', kid: '0d9f9af0-9e98-4fb1-910a-f92fdd43c397' },
  masterAes: { id: '4a990485-eb49-4cce-940b-e98ef370585d', kid: 'afeedbb7-00f6-4b94-9ca1-cdf0ce6ca862' },
  appRsa: { id: '7c6865d4-5a30-47a7-9fa1-c0fddafb4c8b', kid: 'UMcPVu3uSHNUCmaGr1KtlmddpBx2dmeAZ9PdL9TNjfw' },
  appRsaEnc: {
    id: '21698e16-e62f-4fc1-8d7b-2bf857d5247d',
    kid: 'E_KUtCoYEr4fhSAdH_HWx0jVUgxEkeYJ8TQvToRItNc',
  },
  appHmac: { id: 'c9ab8200-bf79-443c-96c9-b50f87be1aa0', kid: 'b9ac8a69-0f50-48cd-98bf-0ec55990ae35' },
  appAes: { id: '133d2b29-14dc-4d34-9f74-fe07aa63c230', kid: 'ddf1fba5-8965-4829-91ff-9c4d98497600' },
};
const KEYSTORE_ID = 'a0000000-0000-4000-8000-00000000ks01';

/** Components made on the source between the two backups, with their kids. */
const added = {
  masterRsa: { id: randomUUID(), kid: '' },
  masterAes: { id: randomUUID(), kid: randomUUID() },
  appRsa: { id: randomUUID(), kid: '' },
  appHmac: { id: randomUUID(), kid: randomUUID() },
};

const sql = (text: string) => ctx.stack.primary.query(text, [], ctx.stack.database);
const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** A component with its config rows, inserted as Keycloak's admin API stores one. */
async function insertKeyComponent(
  realmId: string,
  component: { id: string; name: string; providerId: string },
  config: Record<string, string>,
): Promise<void> {
  const rows = Object.entries(config)
    .map(
      ([name, value]) => `(${quote(randomUUID())}, ${quote(component.id)}, ${quote(name)}, ${quote(value)})`,
    )
    .join(',\n');
  await sql(`
    insert into component (id, name, parent_id, provider_id, provider_type, realm_id, sub_type)
    values (${quote(component.id)}, ${quote(component.name)}, ${quote(realmId)}, ${quote(component.providerId)},
            'org.keycloak.keys.KeyProvider', ${quote(realmId)}, null);
    insert into component_config (id, component_id, name, value) values ${rows};`);
}

async function deleteComponent(id: string): Promise<void> {
  await sql(`delete from component_config where component_id = ${quote(id)};
             delete from component where id = ${quote(id)};`);
}

/** A new RSA key as rsa-generated stores it (PKCS#1 private key, self-signed certificate), and its kid by openssl. */
async function newRsaKey(cn: string): Promise<{ privateKey: string; certificate: string; kid: string }> {
  const dir = await mkdtemp(path.join(scratch, 'rsa-'));
  const [key, cert, pub] = ['key.pem', 'cert.der', 'pub.der'].map((f) => path.join(dir, f)) as [
    string,
    string,
    string,
  ];
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-outform',
    'DER',
    '-subj',
    `/CN=${cn}`,
    '-days',
    '2',
  ]);
  const { stdout: pubPem } = await run('openssl', [
    'x509',
    '-inform',
    'DER',
    '-in',
    cert,
    '-pubkey',
    '-noout',
  ]);
  const pubPemFile = path.join(dir, 'pub.pem');
  await writeFile(pubPemFile, pubPem);
  await run('openssl', ['pkey', '-pubin', '-in', pubPemFile, '-outform', 'DER', '-out', pub]);
  const kid = createHash('sha256')
    .update(await readFile(pub))
    .digest('base64url');
  const privateKey = createPrivateKey(await readFile(key, 'utf8'))
    .export({ type: 'pkcs1', format: 'der' })
    .toString('base64');
  return { privateKey, certificate: (await readFile(cert)).toString('base64'), kid };
}

async function backup(time: Date): Promise<string> {
  const backupId = backupIdFor(time);
  await ctx.stack.waitForReplay();
  await dumpStep(services, {
    target: 'keycloak',
    backupId,
    tiers: ['hourly'],
    scheduledAt: time,
    database: 'keycloak',
    schema: 'public',
    policy: retentionPolicy(services.config),
  });
  await verifyStep(services, { target: 'keycloak', backupId, full: false, jobs: 1 });
  return backupId;
}

function restoreUrl(database: string): string {
  const url = new URL(ctx.stack.primaryUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** What `keycloak-backup restore` does, through the same module, with its printed lines captured. */
async function restore(backupId: string, database: string, disableReintroducedKeys: boolean) {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.join(' '));
  });
  try {
    const url = restoreUrl(database);
    await prepareRestoreTarget(url);
    const keys = await RestoreKeyReport.before(
      services,
      'keycloak',
      {
        label: `backup ${backupId}`,
        manifest: await readManifest(services.primaryStore, services.envelope, 'keycloak', backupId),
      },
      { disableReintroducedKeys },
    );
    const restored = await restoreStep(services, {
      target: 'keycloak',
      backupId,
      databaseUrl: url,
      jobs: 1,
      afterRestore: (restoredUrl) => keys.afterRestore(restoredUrl, `backup ${backupId}`),
    });
    return { url, result: keys.finish(), checks: restored.report, text: lines.join('\n') };
  } finally {
    log.mockRestore();
  }
}

const names = (changes: readonly KeyChange[] | undefined) =>
  (changes ?? []).map((c) => `${c.key.realm}/${c.key.componentId}/${c.key.kid}/${c.reason}`).sort();

let first: string;
let second: string;
let beforeChanges: Date;
const recovered: string[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'kb-realm-keys-'));
  services = await localServices(parseConfig(ctx.stack.env()), createLogger({ silent: true }));
  // Before the first backup: a java-keystore key in master, and a (disabled) realm with no key components.
  await insertKeyComponent(
    MASTER,
    { id: KEYSTORE_ID, name: 'keystore-signing', providerId: 'java-keystore' },
    {
      keystore: '/opt/keycloak/conf/signing.jks',
      keyAlias: 'signing',
      priority: '50',
      keystorePassword: 'x',
    },
  );
  await sql(`create temp table kb_realm as select * from realm where id = 'betterGR';
             update kb_realm set id = 'no-keys', name = 'no-keys', enabled = false;
             insert into realm select * from kb_realm;`);
  // Sessions a restore revives: two browser sessions and an offline token, with three client sessions.
  await sql(`insert into offline_user_session (user_session_id, user_id, realm_id, created_on, offline_flag, data)
             values ('s-1', '123456789', 'betterGR', 1, '0', '{}'), ('s-2', '987654321', 'betterGR', 1, '0', '{}'),
                    ('s-3', '123456789', 'betterGR', 1, '1', '{}');
             insert into offline_client_session (user_session_id, client_id, offline_flag, data)
             values ('s-1', 'c', '0', '{}'), ('s-2', 'c', '0', '{}'), ('s-3', 'c', '1', '{}');`);
  const day = new Date();
  day.setUTCHours(0, 0, 0, 0);
  first = await backup(new Date(day.getTime() - 2 * 3600_000));
  // A base backup for point-in-time recovery, and a moment after it and before any key changes.
  await services.snapshots.create({
    target: 'keycloak',
    snapshotId: 'kb-keycloak-realm-keys',
    backupId: first,
    retainUntil: new Date(Date.now() + 86_400_000),
  });
  await sleep(700);
  beforeChanges = new Date();
  await sleep(700);

  // master: a routine rotation (new active RSA key, the old one passive), a new AES secret above the old one, and
  // the keystore key removed after it leaked.
  const masterRsa = await newRsaKey('master');
  added.masterRsa.kid = masterRsa.kid;
  await insertKeyComponent(
    MASTER,
    { id: added.masterRsa.id, name: 'rsa-rotated', providerId: 'rsa-generated' },
    { priority: '100', keyUse: 'SIG', privateKey: masterRsa.privateKey, certificate: masterRsa.certificate },
  );
  await sql(`insert into component_config (id, component_id, name, value)
             values (${quote(randomUUID())}, ${quote(FIXTURE.masterRsa.id)}, 'active', 'false');`);
  await insertKeyComponent(
    MASTER,
    { id: added.masterAes.id, name: 'aes-rotated', providerId: 'aes-generated' },
    { priority: '200', kid: added.masterAes.kid, secret: randomBytes(16).toString('base64url') },
  );
  await deleteComponent(KEYSTORE_ID);
  // betterGR: its RSA and HMAC keys leaked: new ones added, the old ones removed; its encryption key disabled.
  const appRsa = await newRsaKey('betterGR');
  added.appRsa.kid = appRsa.kid;
  await insertKeyComponent(
    APP,
    { id: added.appRsa.id, name: 'rsa-after-leak', providerId: 'rsa-generated' },
    { priority: '100', keyUse: 'SIG', privateKey: appRsa.privateKey, certificate: appRsa.certificate },
  );
  await deleteComponent(FIXTURE.appRsa.id);
  await insertKeyComponent(
    APP,
    { id: added.appHmac.id, name: 'hmac-after-leak', providerId: 'hmac-generated' },
    {
      priority: '100',
      algorithm: 'HS512',
      kid: added.appHmac.kid,
      secret: randomBytes(64).toString('base64url'),
    },
  );
  await deleteComponent(FIXTURE.appHmac.id);
  await sql(`insert into component_config (id, component_id, name, value)
             values (${quote(randomUUID())}, ${quote(FIXTURE.appRsaEnc.id)}, 'enabled', 'false');`);
  second = await backup(new Date(day.getTime() - 3600_000));
}, 240_000);

afterAll(async () => {
  for (const instanceId of recovered) await services?.pitr.teardown(instanceId).catch(() => undefined);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const REINTRODUCED = [
  `${APP}/${FIXTURE.appHmac.id}/${FIXTURE.appHmac.kid}/removed`,
  `${APP}/${FIXTURE.appRsa.id}/${FIXTURE.appRsa.kid}/removed`,
  `${APP}/${FIXTURE.appRsaEnc.id}/${FIXTURE.appRsaEnc.kid}/disabled`,
  `master/${KEYSTORE_ID}/null/removed`,
].sort();

describe('realm keys across a restore', () => {
  it('records every key with its kid, provider and status in the manifest, and the sessions by kind', async () => {
    const manifest = await readManifest(services.primaryStore, services.envelope, 'keycloak', first);
    const keys = manifest.contents.keys ?? [];
    const byId = new Map(keys.map((k) => [k.componentId, k]));
    for (const fixture of Object.values(FIXTURE)) expect(byId.get(fixture.id)?.kid).toBe(fixture.kid);
    expect(byId.get(FIXTURE.masterRsa.id)).toMatchObject({
      realm: 'master',
      name: 'rsa-generated',
      providerId: 'rsa-generated',
      algorithm: 'RS256',
      use: 'sig',
      status: 'active',
      priority: 100,
    });
    expect(byId.get(FIXTURE.masterRsaEnc.id)).toMatchObject({ algorithm: 'RSA-OAEP', use: 'enc' });
    expect(byId.get(FIXTURE.masterHmac.id)).toMatchObject({
      providerId: 'hmac-generated',
      algorithm: 'HS512',
    });
    expect(byId.get(FIXTURE.masterAes.id)).toMatchObject({ providerId: 'aes-generated', algorithm: 'AES' });
    expect(byId.get(KEYSTORE_ID)).toMatchObject({
      providerId: 'java-keystore',
      kid: null,
      fingerprint: null,
    });
    expect(keys.filter((k) => k.realm === 'no-keys')).toEqual([]);
    expect(manifest.contents.sessions).toEqual({ userSessions: 2, offlineSessions: 1, clientSessions: 3 });
    // Described, never carried: no key material and no keystore password in the manifest.
    const text = JSON.stringify(manifest);
    expect(text).not.toContain('MIIE');
    expect(text).not.toContain('keystorePassword');
  });

  it('derives the kid of a key made after the fixture from its certificate, as openssl computes it', async () => {
    const manifest = await readManifest(services.primaryStore, services.envelope, 'keycloak', second);
    const kids = new Map((manifest.contents.keys ?? []).map((k) => [k.componentId, k.kid]));
    expect(kids.get(added.masterRsa.id)).toBe(added.masterRsa.kid);
    expect(kids.get(added.appRsa.id)).toBe(added.appRsa.kid);
    expect(added.masterRsa.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('restoring the first backup names exactly the reintroduced and lost keys, before and after, and keeps them', async () => {
    const { url, result, checks, text } = await restore(first, 'restored_keep', false);

    const live = result.after?.comparisons.find((c) => c.against === 'live');
    expect(result.after?.decidedBy).toBe('live');
    expect(names(result.after?.reintroduced)).toEqual(REINTRODUCED);
    expect(names(live?.realms?.flatMap((r) => r.lost))).toEqual(
      [
        `${APP}/${added.appHmac.id}/${added.appHmac.kid}/removed`,
        `${APP}/${added.appRsa.id}/${added.appRsa.kid}/removed`,
        `master/${added.masterAes.id}/${added.masterAes.kid}/removed`,
        `master/${added.masterRsa.id}/${added.masterRsa.kid}/removed`,
      ].sort(),
    );
    const realm = (name: string) => live?.realms?.find((r) => r.realm === name);
    const slots = (changes: { from: RealmKey | null; to: RealmKey | null; algorithm: string }[] = []) =>
      changes.map((c) => `${c.algorithm}: ${c.from?.kid ?? 'none'} -> ${c.to?.kid ?? 'none'}`).sort();
    expect(slots(realm('master')?.activeChanged)).toEqual([
      `RS256: ${added.masterRsa.kid} -> ${FIXTURE.masterRsa.kid}`,
    ]);
    expect(slots(realm('master')?.secretsReverted)).toEqual([
      `AES: ${added.masterAes.kid} -> ${FIXTURE.masterAes.kid}`,
    ]);
    expect(realm('master')?.statusChanged.map((c) => [c.key.componentId, c.from, c.to])).toEqual([
      [FIXTURE.masterRsa.id, 'passive', 'active'],
    ]);
    expect(slots(realm(APP)?.activeChanged)).toEqual([
      `RS256: ${added.appRsa.kid} -> ${FIXTURE.appRsa.kid}`,
      `RSA-OAEP: none -> ${FIXTURE.appRsaEnc.kid}`,
    ]);
    expect(slots(realm(APP)?.secretsReverted)).toEqual([
      `HS512: ${added.appHmac.kid} -> ${FIXTURE.appHmac.kid}`,
    ]);
    // The newest verified backup (the second) holds what live holds: the same changes.
    const newest = result.after?.comparisons.find((c) => c.against === 'newest-verified-backup');
    expect(newest?.label).toBe(`backup ${second} (the newest verified)`);
    expect(newest?.realms).toEqual(live?.realms);
    // Before the restore, from the first backup's manifest: the same keys.
    expect(names(result.before.reintroduced)).toEqual(REINTRODUCED);
    expect(result.after?.realmsWithoutKeys).toEqual(['no-keys']);
    expect(result.before.sessions).toEqual({ userSessions: 2, offlineSessions: 1, clientSessions: 3 });
    expect(result.after?.sessions).toEqual({ userSessions: 2, offlineSessions: 1, clientSessions: 3 });

    expect(text).toContain(`realm keys before the restore: restoring backup ${first}`);
    expect(text).toContain(`realm keys after the restore: restoring backup ${first}`);
    expect(text).toContain(
      `REINTRODUCED ${APP}/rsa-generated (id ${FIXTURE.appRsa.id}, rsa-generated, sig RS256, kid ${FIXTURE.appRsa.kid}, active): removed since`,
    );
    expect(text).toContain(
      `REINTRODUCED master/keystore-signing (id ${KEYSTORE_ID}, java-keystore, sig RS256, kid in the keystore file, active): removed since`,
    );
    expect(text).toContain(
      `LOST master/rsa-rotated (id ${added.masterRsa.id}, rsa-generated, sig RS256, kid ${added.masterRsa.kid}, active)`,
    );
    expect(text).toContain(
      'kept the database exactly as at the restore point: 4 reintroduced key(s) stay enabled',
    );
    expect(text).toContain(
      'the restore will revive 2 user session(s) and 1 offline session(s) (3 client session row(s)); --clear-sessions logs everyone out',
    );
    expect(text).toContain(
      'the restore revived 2 user session(s) and 1 offline session(s) (3 client session row(s))',
    );
    expect(text).toContain('realm no-keys: no key components');

    // Kept exactly as at the restore point: no `enabled` row was written.
    const [row] = await ctx.stack.primary.query<{ n: number }>(
      `select count(*)::int as n from component_config where name = 'enabled' and value = 'false'`,
      [],
      'restored_keep',
    );
    expect(row?.n).toBe(0);
    expect(checks.passed).toBe(true);
    expect(url).toContain('restored_keep');
  });

  it('--disable-reintroduced-keys leaves exactly those disabled, and a realm left without a key is a warning', async () => {
    const { result, checks, text } = await restore(first, 'restored_disabled', true);

    expect(result.decision?.disabled.map((k) => `${k.realm}/${k.componentId}/${k.kid}`).sort()).toEqual(
      REINTRODUCED.map((n) => n.split('/').slice(0, 3).join('/')).sort(),
    );
    const disabled = await ctx.stack.primary.query<{ component_id: string }>(
      `select component_id from component_config where name = 'enabled' and value = 'false' order by 1`,
      [],
      'restored_disabled',
    );
    expect(disabled.map((r) => r.component_id)).toEqual(
      [FIXTURE.appHmac.id, FIXTURE.appRsa.id, FIXTURE.appRsaEnc.id, KEYSTORE_ID].sort(),
    );
    // Disabled, not deleted: every component of the backup is still there.
    const [count] = await ctx.stack.primary.query<{ n: number }>(
      `select count(*)::int as n from component where provider_type = 'org.keycloak.keys.KeyProvider'`,
      [],
      'restored_disabled',
    );
    expect(count?.n).toBe(9);
    expect(result.decision?.leftWithoutKey).toEqual([
      { realm: APP, use: 'enc', algorithm: 'RSA-OAEP' },
      { realm: APP, use: 'sig', algorithm: 'HS512' },
      { realm: APP, use: 'sig', algorithm: 'RS256' },
    ]);
    expect(text).toContain('disabled 4 reintroduced key component(s) (enabled=false, not deleted):');
    expect(text).toContain(
      `  ${APP}/hmac-generated-hs512 (id ${FIXTURE.appHmac.id}, hmac-generated, sig HS512, kid ${FIXTURE.appHmac.kid}, disabled)`,
    );
    expect(text).toContain(
      `realm ${APP} has no enabled sig RS256 key left: Keycloak will generate a new key at start, and clients must refetch the realm's keys`,
    );
    // The restore succeeds; the Keycloak checks warn about the realm instead of failing.
    expect(checks.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(checks.passed).toBe(true);
    const signing = checks.checks.find((c) => c.name === 'signing-keys');
    expect(signing?.status).toBe('warn');
    expect(signing?.detail).toContain(`realm ${APP}: every RS256 signing key is disabled`);
    expect(checks.checks.find((c) => c.name === 'hmac-keys')?.status).toBe('warn');

    // Read back, the restored database's keys say the same: those four disabled, the rest as in the backup.
    const after = await services.tools.readRealmKeys(restoreUrl('restored_disabled'));
    const status = new Map(after.keys.map((k) => [k.componentId, k.status]));
    expect(status.get(FIXTURE.masterRsa.id)).toBe('active');
    expect(status.get(FIXTURE.appRsa.id)).toBe('disabled');
  });

  it('pitr to a moment before the changes names the same keys, estimated before and exact after, and disables them', async () => {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.join(' '));
    });
    let result: Awaited<ReturnType<RestoreKeyReport['finish']>>;
    let databaseUrl: string;
    try {
      const keys = await RestoreKeyReport.beforeRecovery(services, 'keycloak', beforeChanges, {
        disableReintroducedKeys: true,
      });
      recovered.push('rk-recovered');
      const instance = await services.pitr.restore({
        target: 'keycloak',
        instanceId: 'rk-recovered',
        time: beforeChanges,
      });
      databaseUrl = instance.databaseUrl ?? '';
      await keys.afterRestore(databaseUrl, 'rk-recovered (the recovered database)');
      result = keys.finish();
    } finally {
      log.mockRestore();
    }
    const text = lines.join('\n');

    expect(result.before.restorePoint).toBe(
      `the state at ${beforeChanges.toISOString()}, as backup ${first} (the nearest before it) recorded it; changes after that backup show after the recovery`,
    );
    expect(names(result.before.reintroduced)).toEqual(REINTRODUCED);
    expect(names(result.after?.reintroduced)).toEqual(REINTRODUCED);
    expect(result.decision?.disabled.map((k) => k.componentId).sort()).toEqual(
      [FIXTURE.appHmac.id, FIXTURE.appRsa.id, FIXTURE.appRsaEnc.id, KEYSTORE_ID].sort(),
    );
    expect(text).toContain('realm keys after the restore: restoring rk-recovered (the recovered database)');
    expect(text).toContain('disabled 4 reintroduced key component(s) (enabled=false, not deleted):');
    const after = await services.tools.readRealmKeys(databaseUrl);
    expect(
      after.keys
        .filter((k) => k.status === 'disabled')
        .map((k) => k.componentId)
        .sort(),
    ).toEqual([FIXTURE.appHmac.id, FIXTURE.appRsa.id, FIXTURE.appRsaEnc.id, KEYSTORE_ID].sort());
  });
});
