// Several databases backed up one after another with nothing but --database-url: one correct backup each, and a
// database never joins another's series.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../../functions/adapters/postgres/connect.js';
import { runCli } from '../support/cli.js';
import { useTestStack } from '../support/stack.js';

const ctx = useTestStack();
let stateDir: string;

const cli = (...args: string[]) => runCli({ stateDir, timeoutMs: 400_000, withoutKbEnvironment: true }, args);

const DATABASES = ['db_alpha', 'db_beta', 'db_gamma'] as const;
const urlOf = (database: string) => {
  const url = new URL(ctx.stack.primaryUrl);
  url.pathname = `/${database}`;
  return url.toString();
};
const targetOf = (database: string) => {
  const url = new URL(ctx.stack.primaryUrl);
  return `${database.replace('_', '-')}-${url.hostname.replaceAll('.', '-')}-${url.port}`;
};

/** A master realm attribute set to the database's own name, so each copy says which one it is. */
const marker = (url: string) =>
  withClient(url, async (client) => {
    const { rows } = await client.query<{ value: string }>(
      "select a.value from realm_attribute a join realm r on r.id = a.realm_id where r.name = 'master' and a.name = 'trustMarker'",
    );
    return rows[0]?.value;
  });

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-sources-'));
  // Three Keycloak databases, created in the same minute, each told apart by a master realm attribute
  // and by size (db_gamma holds the most events).
  await withClient(urlOf('postgres'), async (client) => {
    for (const database of DATABASES) await client.query(`create database ${database} template keycloak`);
  });
  for (const [index, database] of DATABASES.entries()) {
    await withClient(urlOf(database), async (client) => {
      await client.query(
        "insert into realm_attribute (name, value, realm_id) select 'trustMarker', $1, id from realm where name = 'master'",
        [database],
      );
      await client.query(
        `insert into event_entity (id, event_time, type, realm_id, details_json)
         select gen_random_uuid()::text, 0, 'LOGIN', 'master', repeat('x', 1000) from generate_series(1, $1::int)`,
        [2000 * (index + 1)],
      );
    });
  }
});

afterAll(async () => {
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('backing up several databases with nothing but --database-url', () => {
  const backups = new Map<string, string>();

  it('gives each database a backup of its own, under a target named after it', async () => {
    for (const database of DATABASES) {
      const result = await cli('backup', '--database-url', urlOf(database));
      expect(result.code, result.stderr).toBe(0);
      const line = result.stdout.split('\n').find((l) => l.startsWith(`${targetOf(database)} `));
      expect(line, result.stdout).toMatch(/ \d{8}T\d{6}Z(-\d+)?: .* dumped in /);
      backups.set(database, line!.split(' ')[1]!.replace(/:$/, ''));
    }

    const list = await cli('list', '--json');
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { backupId: string; target: string; verified: boolean }[];
    expect(listed.map((b) => b.target).sort()).toEqual(DATABASES.map(targetOf).sort());
    expect(listed.every((b) => b.verified)).toBe(true);
  }, 1_200_000);

  it('restores each backup to the content of its own database', async () => {
    for (const database of DATABASES) {
      const restoredUrl = urlOf(`${database}_restored`);
      const result = await cli(
        'restore',
        backups.get(database)!,
        '--target',
        targetOf(database),
        '--to',
        restoredUrl,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/source-counts-exact\s+pass/);
      expect(await marker(restoredUrl)).toBe(database);
    }
  }, 1_200_000);

  it('refuses another database under a target that holds one, showing both and what to do', async () => {
    const result = await cli(
      'backup',
      '--database-url',
      urlOf('db_beta'),
      '--target-name',
      targetOf('db_alpha'),
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /SourceMismatchError: target db-alpha-[\w-]+ holds backups of database db_alpha \(OID \d+\) of cluster \d+ .*; this is database db_beta \(OID \d+\) of cluster \d+/,
    );
    expect(result.stderr).toContain('back up each database under its own target');
  }, 600_000);
});
