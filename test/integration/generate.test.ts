// The benchmark data generator on a real PostgreSQL loaded with the Keycloak fixture: exact growth, intact keys, idempotence.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GENERATED_TABLE,
  GROWN_TABLES,
  type GrowResult,
  growKeycloakDatabase,
} from '../../bench/generate.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const TINY = { users: 200, sessions: 100, events: 300 } as const;

// --- helpers over the database ---

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function countRows(url: string): Promise<Record<string, number>> {
  return withClient(url, async (client) => {
    const counts: Record<string, number> = {};
    for (const table of GROWN_TABLES) {
      const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM public.${table}`);
      counts[table] = Number(rows[0]?.n);
    }
    return counts;
  });
}

/** Rows that break a foreign key (checked by query, not by trusting convalidated) or a Keycloak relation without one. */
async function findBrokenReferences(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const broken: string[] = [];
    const { rows: keys } = await client.query<{
      name: string;
      child: string;
      parent: string;
      pairs: string;
      present: string;
      validated: boolean;
    }>(`
SELECT c.conname AS name, c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent,
  string_agg(format('c.%I = p.%I', ca.attname, pa.attname), ' AND ') AS pairs,
  string_agg(format('c.%I IS NOT NULL', ca.attname), ' AND ') AS present,
  bool_and(c.convalidated) AS validated
FROM pg_constraint c
CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(child_col, parent_col)
JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.child_col
JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent_col
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
GROUP BY c.conname, c.conrelid, c.confrelid`);
    for (const key of keys) {
      if (!key.validated) broken.push(`${key.name} not validated`);
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${key.child} c WHERE ${key.present} AND NOT EXISTS (SELECT 1 FROM ${key.parent} p WHERE ${key.pairs})`,
      );
      if (Number(rows[0]?.n) > 0) broken.push(`${key.name}: ${rows[0]?.n} orphans`);
    }
    const unkeyed: Record<string, string> = {
      'user realm':
        'SELECT count(*) FROM user_entity u WHERE NOT EXISTS (SELECT 1 FROM realm r WHERE r.id = u.realm_id)',
      'role mapping role':
        'SELECT count(*) FROM user_role_mapping m WHERE NOT EXISTS (SELECT 1 FROM keycloak_role k WHERE k.id = m.role_id)',
      'group membership group':
        'SELECT count(*) FROM user_group_membership m WHERE NOT EXISTS (SELECT 1 FROM keycloak_group g WHERE g.id = m.group_id)',
      'session user':
        'SELECT count(*) FROM offline_user_session s WHERE NOT EXISTS (SELECT 1 FROM user_entity u WHERE u.id = s.user_id AND u.realm_id = s.realm_id)',
      'client session session':
        'SELECT count(*) FROM offline_client_session c WHERE NOT EXISTS (SELECT 1 FROM offline_user_session s WHERE s.user_session_id = c.user_session_id AND s.offline_flag = c.offline_flag)',
      'client session client':
        'SELECT count(*) FROM offline_client_session c WHERE NOT EXISTS (SELECT 1 FROM client k WHERE k.id = c.client_id)',
      'event realm':
        'SELECT count(*) FROM event_entity e WHERE NOT EXISTS (SELECT 1 FROM realm r WHERE r.id = e.realm_id)',
      'event user':
        'SELECT count(*) FROM event_entity e WHERE NOT EXISTS (SELECT 1 FROM user_entity u WHERE u.id = e.user_id)',
      'event client':
        'SELECT count(*) FROM event_entity e WHERE NOT EXISTS (SELECT 1 FROM client k WHERE k.client_id = e.client_id AND k.realm_id = e.realm_id)',
      'admin event realm':
        'SELECT count(*) FROM admin_event_entity e WHERE NOT EXISTS (SELECT 1 FROM realm r WHERE r.id = e.realm_id)',
    };
    for (const [relation, sql] of Object.entries(unkeyed)) {
      const { rows } = await client.query<{ count: string }>(sql);
      if (Number(rows[0]?.count) > 0) broken.push(`${relation}: ${rows[0]?.count} orphans`);
    }
    return broken;
  });
}

/** A digest of every generated table's contents, to compare two databases. */
async function digestRows(url: string): Promise<Record<string, string>> {
  return withClient(url, async (client) => {
    const digests: Record<string, string> = {};
    for (const table of GROWN_TABLES) {
      const { rows } = await client.query<{ digest: string }>(
        `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS digest FROM public.${table} t`,
      );
      digests[table] = rows[0]?.digest ?? '';
    }
    return digests;
  });
}

describe('growKeycloakDatabase', () => {
  let stack: TestStack;
  let url: string;
  let before: Record<string, number>;
  let first: GrowResult;

  beforeAll(async () => {
    stack = await startTestStack();
    url = stack.primaryUrl;
    // The fixture has no groups; one lets the test see memberships generated where groups exist.
    await withClient(url, (client) =>
      client.query(
        "INSERT INTO keycloak_group (id, name, parent_group, realm_id, type) VALUES ('00000000-0000-4000-8000-00000000beef', 'staff', ' ', 'betterGR', 0)",
      ),
    );
    await withClient(stack.primary.url('postgres'), (client) =>
      client.query(`CREATE DATABASE keycloak_twin TEMPLATE ${pg.escapeIdentifier(stack.database)}`),
    );
    before = await countRows(url);
    first = await growKeycloakDatabase({ url, size: TINY, seed: 7 });
  });

  afterAll(async () => {
    await stack?.remove();
  });

  it('grows each table by exactly the requested counts', async () => {
    const after = await countRows(url);
    const growth = Object.fromEntries(GROWN_TABLES.map((t) => [t, (after[t] ?? 0) - (before[t] ?? 0)]));
    expect(growth).toEqual({
      user_entity: 200,
      credential: 200,
      user_attribute: 600,
      user_role_mapping: 200,
      user_group_membership: 200,
      offline_user_session: 100,
      offline_client_session: 100,
      event_entity: 300,
      admin_event_entity: 15,
    });
    expect(first.added).toEqual({ users: 200, sessions: 100, events: 300, adminEvents: 15 });
    expect(first.databaseBytes).toBeGreaterThan(10_000_000);
  });

  it('keeps every foreign key and every key-less Keycloak relation intact', async () => {
    expect(await findBrokenReferences(url)).toEqual([]);
  });

  it('gives generated users the fields Keycloak requires', async () => {
    const { rows } = await withClient(url, (client) =>
      client.query<{
        realm_known: boolean;
        enabled: boolean;
        created_timestamp: string;
        username: string;
        email: string;
        not_before: number;
        secret_data: string;
        credential_data: string;
        type: string;
        priority: number;
      }>(`
SELECT EXISTS (SELECT 1 FROM realm r WHERE r.id = u.realm_id) AS realm_known, u.enabled, u.created_timestamp,
  u.username, u.email, u.not_before, c.type, c.priority, c.secret_data, c.credential_data
FROM user_entity u JOIN credential c ON c.user_id = u.id
WHERE u.id NOT IN ('123456789', '987654321', 'admin-id-789', '25d09a58-ae64-4012-83f1-1e786133f483',
                   '616d5907-ee7b-4507-8178-fd54e2730451')`),
    );
    expect(rows).toHaveLength(200);
    const algorithms = new Set<string>();
    for (const row of rows) {
      expect(row.realm_known).toBe(true);
      expect(row.enabled).toBe(true);
      // milliseconds: between 2015 and 2030
      expect(Number(row.created_timestamp)).toBeGreaterThan(1_420_070_400_000);
      expect(Number(row.created_timestamp)).toBeLessThan(1_893_456_000_000);
      expect(row.username).toMatch(/^[a-z]+\.[a-z]+\.7\.\d+$/);
      expect(row.email).toBe(`${row.username}@example.org`);
      expect(row.not_before).toBe(0);
      expect(row.type).toBe('password');
      expect(row.priority).toBe(10);
      const secret = JSON.parse(row.secret_data) as { value: string; salt: string };
      const data = JSON.parse(row.credential_data) as { algorithm: string; hashIterations: number };
      algorithms.add(data.algorithm);
      expect(Buffer.from(secret.salt, 'base64')).toHaveLength(16);
      expect(Buffer.from(secret.value, 'base64')).toHaveLength(data.algorithm === 'argon2' ? 32 : 64);
    }
    expect([...algorithms].sort()).toEqual(['argon2', 'pbkdf2-sha512']);
  });

  it('adds nothing when run again with the same seed and size', async () => {
    const counts = await countRows(url);
    const again = await growKeycloakDatabase({ url, size: TINY, seed: 7 });
    expect(again.added).toEqual({ users: 0, sessions: 0, events: 0, adminEvents: 0 });
    expect(await countRows(url)).toEqual(counts);
    expect(counts.user_entity).toBe((before.user_entity ?? 0) + 200);
    const { rows } = await withClient(url, (client) =>
      client.query<{ kind: string; row_count: string }>(
        `SELECT kind, row_count FROM ${GENERATED_TABLE} WHERE seed = 7 ORDER BY kind`,
      ),
    );
    expect(rows.map((r) => [r.kind, Number(r.row_count)])).toEqual([
      ['adminEvents', 15],
      ['events', 300],
      ['sessions', 100],
      ['users', 200],
    ]);
  });

  it('writes the same rows for the same seed in another database, whatever the batch size', async () => {
    const twin = stack.primary.url('keycloak_twin');
    await growKeycloakDatabase({ url: twin, size: TINY, seed: 7, batchSize: 64 });
    expect(await digestRows(twin)).toEqual(await digestRows(url));
  });

  it('adds distinct rows for another seed without breaking unique usernames', async () => {
    const other = await growKeycloakDatabase({ url, size: { users: 50, sessions: 10, events: 20 }, seed: 8 });
    expect(other.added.users).toBe(50);
    const after = await countRows(url);
    expect(after.user_entity).toBe((before.user_entity ?? 0) + 250);
    expect(await findBrokenReferences(url)).toEqual([]);
  });

  it('refuses a schema without Keycloak tables, naming what is missing', async () => {
    await expect(
      growKeycloakDatabase({ url, schema: 'pg_catalog', size: TINY, seed: 7 }),
    ).rejects.toMatchObject({
      name: 'InvalidInputError',
      message: expect.stringContaining('user_entity'),
    });
  });

  it('refuses to write over rows of a seed its record has lost, instead of failing on a raw key error', async () => {
    await withClient(url, (client) => client.query(`DELETE FROM ${GENERATED_TABLE} WHERE seed = 8`));
    const counts = await countRows(url);
    await expect(
      growKeycloakDatabase({ url, size: { users: 50, sessions: 10, events: 20 }, seed: 8 }),
    ).rejects.toMatchObject({ name: 'InvalidInputError' });
    expect(await countRows(url)).toEqual(counts);
  });
});
