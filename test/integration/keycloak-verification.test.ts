import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  takeSourceSnapshot,
  verifyKeycloakDatabase,
} from '../../functions/adapters/postgres/keycloak-probe.js';
import {
  CHECK_NAMES,
  type CheckResult,
  type VerificationReport,
} from '../../functions/core/keycloak/index.js';
import {
  loadKeycloakFixture,
  startThrowawayCluster,
  type ThrowawayCluster,
} from '../support/throwaway-cluster.js';

let cluster: ThrowawayCluster;
let copies = 0;

beforeAll(async () => {
  cluster = await startThrowawayCluster();
  await loadKeycloakFixture(cluster, 'keycloak');
});

afterAll(async () => {
  await cluster?.stop();
});

/** A fresh copy of the loaded fixture, so each test can break its own database. */
async function copyOfFixture(): Promise<string> {
  const name = `kc_copy_${++copies}`;
  await cluster.psql('postgres', `create database ${name} template keycloak owner keycloak`);
  return name;
}

async function withClient<T>(database: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: cluster.url(database) });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

const check = (report: VerificationReport, name: string): CheckResult => {
  const found = report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check ${name}`);
  return found;
};
const failed = (report: VerificationReport) =>
  report.checks.filter((c) => c.status === 'fail').map((c) => c.name);

const MASTER_RSA = `select c.id from component c join realm r on r.id = c.parent_id
  where r.name = 'master' and c.provider_type = 'org.keycloak.keys.KeyProvider' and c.provider_id = 'rsa-generated'`;

describe('verifyKeycloakDatabase on the Keycloak 26.0.8 fixture', () => {
  it('passes every check on the fixture', async () => {
    const report = await verifyKeycloakDatabase(cluster.url('keycloak'), { schema: 'public' });
    expect(report.checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.keycloakVersion).toBe('26.0.8');
    expect(report.inventory).toEqual({ realms: 2, users: 5, credentials: 5, clients: 13, keyProviders: 8 });
    expect(check(report, CHECK_NAMES.changelogNotAhead).detail).toContain('148 changesets');
  });

  it('fails the signing-key check naming the realm when its RSA key provider is deleted', async () => {
    const db = await copyOfFixture();
    await cluster.psql(
      db,
      `delete from component_config where component_id in (${MASTER_RSA});
       delete from component where id in (${MASTER_RSA});`,
    );
    const report = await verifyKeycloakDatabase(cluster.url(db));
    expect(failed(report)).toEqual([CHECK_NAMES.signingKeys]);
    expect(check(report, CHECK_NAMES.signingKeys).detail).toContain('realm master: no enabled, active RS256');
    expect(report.passed).toBe(false);
  });

  it('fails the signing-key check when the private key is truncated', async () => {
    const db = await copyOfFixture();
    await cluster.psql(
      db,
      `update component_config set value = substr(value, 1, 800)
        where name = 'privateKey' and component_id in (${MASTER_RSA});`,
    );
    const report = await verifyKeycloakDatabase(cluster.url(db));
    expect(check(report, CHECK_NAMES.signingKeys).detail).toContain('realm master');
    expect(check(report, CHECK_NAMES.signingKeys).status).toBe('fail');
  });

  it('fails the orphan check with a count of 1 for a user in a realm that does not exist', async () => {
    const db = await copyOfFixture();
    await cluster.psql(
      db,
      `insert into user_entity (id, realm_id, username, email_verified, enabled, not_before, created_timestamp)
       values ('orphan-user', 'no-such-realm', 'ghost', false, true, 0, 0);`,
    );
    const report = await verifyKeycloakDatabase(cluster.url(db));
    expect(failed(report)).toEqual([CHECK_NAMES.orphans]);
    expect(check(report, CHECK_NAMES.orphans).detail).toBe(
      '1 orphaned row(s): user_entity.realm_id -> realm.id: 1',
    );
  });

  it('fails the lock check while databasechangeloglock is held', async () => {
    const db = await copyOfFixture();
    await cluster.psql(
      db,
      `update databasechangeloglock set locked = true, lockgranted = now(), lockedby = 'kc-0' where id = 1;`,
    );
    const report = await verifyKeycloakDatabase(cluster.url(db));
    expect(failed(report)).toEqual([CHECK_NAMES.liquibaseLock]);
    expect(check(report, CHECK_NAMES.liquibaseLock).detail).toContain('row 1 by kc-0');
  });

  it('compares with a snapshot: a deleted user fails a dump comparison and passes pitr within 50%', async () => {
    const db = await copyOfFixture();
    const source = await withClient(db, (client) => takeSourceSnapshot(client, 'public'));
    expect(source.tableCounts.user_entity).toBe(5);
    expect(Object.keys(source.tableCounts)).toHaveLength(87);
    expect(Object.keys(source.keyFingerprints)).toHaveLength(8);
    expect(source.realms).toEqual(['betterGR', 'master']);

    const unchanged = await verifyKeycloakDatabase(cluster.url(db), { source, mode: 'dump' });
    expect(failed(unchanged)).toEqual([]);

    const user = `select id from user_entity where username = 'user1'`;
    await cluster.psql(
      db,
      `delete from credential where user_id in (${user});
       delete from user_role_mapping where user_id in (${user});
       delete from user_entity where id in (${user});`,
    );
    const dump = await verifyKeycloakDatabase(cluster.url(db), { source, mode: 'dump' });
    expect(failed(dump)).toEqual([CHECK_NAMES.countsNear]);
    expect(check(dump, CHECK_NAMES.countsNear).detail).toContain('user_entity 5 -> 4 (-1)');
    expect(check(dump, CHECK_NAMES.countsNear).class).toBe('near');

    const pitr = await verifyKeycloakDatabase(cluster.url(db), {
      source,
      mode: 'pitr',
      tolerancePercent: 50,
    });
    expect(failed(pitr)).toEqual([]);
    expect(pitr.passed).toBe(true);
  });

  it('fails the fingerprint comparison when key material changes, without showing it', async () => {
    const db = await copyOfFixture();
    const source = await withClient(db, (client) => takeSourceSnapshot(client, 'public'));
    await cluster.psql(
      db,
      `update component_config set value = reverse(value)
        where name = 'secret' and component_id in (select id from component where provider_id = 'hmac-generated'
                                                   and parent_id = 'betterGR');`,
    );
    const report = await verifyKeycloakDatabase(cluster.url(db), {
      source,
      mode: 'pitr',
      tolerancePercent: 50,
    });
    expect(failed(report)).toEqual([CHECK_NAMES.sourceKeys]);
    expect(check(report, CHECK_NAMES.sourceKeys).detail).toMatch(
      /1 key\(s\) with different material: betterGR\/hmac-generated\//,
    );
  });

  it('never puts a secret value in the report or the snapshot', async () => {
    const secrets = await withClient('keycloak', async (client) => {
      const keys = await client.query<{ value: string }>(
        `select value from component_config where value is not null and length(value) >= 16
           and name in ('privateKey', 'certificate', 'secret')`,
      );
      const credentials = await client.query<{ value: string }>(
        `select secret_data as value from credential union all
         select secret from client where secret is not null and length(secret) >= 16`,
      );
      return [...keys.rows, ...credentials.rows].map((r) => r.value);
    });
    expect(secrets.length).toBeGreaterThanOrEqual(8 + 5);

    const source = await withClient('keycloak', (client) => takeSourceSnapshot(client));
    const report = await verifyKeycloakDatabase(cluster.url('keycloak'), { source });
    const text = JSON.stringify({ report, source });
    for (const value of secrets) {
      expect(text).not.toContain(value);
      expect(text).not.toContain(value.slice(0, 40));
    }
  });

  it('counts inside the caller’s open snapshot transaction and leaves it open', async () => {
    const db = await copyOfFixture();
    await withClient(db, async (client) => {
      await client.query('begin isolation level repeatable read read only');
      const { rows } = await client.query<{ id: string }>('select pg_export_snapshot() as id');
      expect(rows[0]?.id).toBeTruthy();
      await cluster.psql(
        db,
        `insert into event_entity (id, event_time, type, realm_id) values ('e1', 0, 'LOGIN', 'betterGR');`,
      );
      const source = await takeSourceSnapshot(client, 'public', { inTransaction: true });
      expect(source.tableCounts.event_entity).toBe(0);
      // Still the same transaction: still the old snapshot.
      const inside = await client.query<{ n: string }>('select count(*) as n from event_entity');
      expect(inside.rows[0]?.n).toBe('0');
      await client.query('commit');
      const after = await client.query<{ n: string }>('select count(*) as n from event_entity');
      expect(after.rows[0]?.n).toBe('1');
    });
  });

  it('reads the schema name from its setting, quoted, and fails cleanly on a schema that is not there', async () => {
    const db = await copyOfFixture();
    await cluster.psql(db, `alter schema public rename to "Kc-Schema";`);
    const report = await withClient(db, (client) => verifyKeycloakDatabase(client, { schema: 'Kc-Schema' }));
    expect(report.checks.filter((c) => c.status !== 'pass')).toEqual([]);

    const wrong = await verifyKeycloakDatabase(cluster.url(db), { schema: 'public' });
    expect(wrong.passed).toBe(false);
    expect(check(wrong, CHECK_NAMES.coreTables).status).toBe('fail');
    expect(check(wrong, CHECK_NAMES.keycloakVersion).detail).toBe('migration_model table missing');
  });

  it('probes the tables a version has: a database without the 26.0 tables still verifies', async () => {
    const db = await copyOfFixture();
    await cluster.psql(db, 'drop table org_domain; drop table org; drop table revoked_token;');
    const report = await verifyKeycloakDatabase(cluster.url(db));
    expect(failed(report)).toEqual([]);
    expect(check(report, CHECK_NAMES.orphans).detail).toBe(
      '18 relations without foreign keys checked, no orphans',
    );
  });
});
