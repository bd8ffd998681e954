// Several databases backed up one after another with nothing but --database-url: one correct backup each, restored
// to exactly its own database's rows; a database that shrinks under half its previous backup is said on the command
// line and to the operator; and a database never joins another's series.
//
// Only one Keycloak version is available offline (the fixture, 26.0.8): the five databases are that fixture, each
// then changed its own way, not five Keycloak versions.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../cli/commands/list.js';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { withClient } from '../../functions/adapters/postgres/connect.js';
import { prepareRestoreTarget } from '../../functions/adapters/postgres/restore-target.js';
import { restoreStep } from '../../functions/core/backup-steps.js';
import { runCli, withStoredStack } from '../support/cli.js';
import { useTestStack } from '../support/stack.js';
import { tableContents } from '../support/table-contents.js';

const ctx = useTestStack();
let stateDir: string;

const cli = (...args: string[]) => runCli({ stateDir, timeoutMs: 400_000, withoutKbEnvironment: true }, args);

/**
 * Five copies of the Keycloak fixture (CREATE DATABASE … TEMPLATE keycloak: the loaded fixture, copied), each
 * changed its own way so that no two hold the same rows. kc_events is by far the largest (3,000 events of 1 KB).
 */
const CHANGES: Record<string, string[]> = {
  // 40 more users in betterGR, each with an attribute.
  kc_users: [
    `insert into user_entity (id, email, email_constraint, email_verified, enabled, realm_id, username, created_timestamp, not_before)
     select 'u-' || g, 'user' || g || '@tenant.example', 'user' || g || '@tenant.example', true, true, 'betterGR', 'tenant-user-' || g, 1733000000000 + g, 0
     from generate_series(1, 40) g`,
    `insert into user_attribute (name, value, user_id, id) select 'department', 'dept-' || (g % 4), 'u-' || g, 'ua-' || g from generate_series(1, 40) g`,
  ],
  // A second, disabled realm made from betterGR's settings.
  kc_realm: [
    `create temporary table new_realm as select * from realm where name = 'betterGR'`,
    `update new_realm set id = 'tenantCopy', name = 'tenantCopy', enabled = false`,
    'insert into realm select * from new_realm',
    `insert into realm_attribute (name, realm_id, value) select name, 'tenantCopy', value from realm_attribute where realm_id = 'betterGR'`,
  ],
  // 25 top-level groups in master.
  kc_groups: [
    `insert into keycloak_group (id, name, parent_group, realm_id, type)
     select 'g-' || g, 'team-' || g, ' ', r.id, 0 from generate_series(1, 25) g, realm r where r.name = 'master'`,
  ],
  kc_events: [
    `insert into event_entity (id, event_time, type, realm_id, details_json)
     select gen_random_uuid()::text, 1733000000000 + g, 'LOGIN', 'betterGR', repeat('x', 1000) from generate_series(1, 3000) g`,
  ],
  // The fixture's row counts but for its marker: every user renamed, only the rows' contents tell it apart.
  kc_renamed: [`update user_entity set first_name = 'Renamed ' || username, last_name = 'Person'`],
};
const DATABASES = Object.keys(CHANGES);

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

/** What each source database held when it was backed up, table by table. */
const sources = new Map<string, Record<string, string>>();

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-sources-'));
  await withClient(urlOf('postgres'), async (client) => {
    for (const database of DATABASES) await client.query(`create database ${database} template keycloak`);
  });
  for (const database of DATABASES) {
    await withClient(urlOf(database), async (client) => {
      await client.query(
        "insert into realm_attribute (name, value, realm_id) select 'trustMarker', $1, id from realm where name = 'master'",
        [database],
      );
      for (const statement of CHANGES[database]!) await client.query(statement);
    });
    sources.set(database, await tableContents(urlOf(database)));
  }
  // No two databases hold the same rows: a backup restored to the wrong one's content cannot pass unseen.
  const distinct = new Set([...sources.values()].map((contents) => JSON.stringify(contents)));
  expect(distinct.size).toBe(DATABASES.length);
});

afterAll(async () => {
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('backing up several databases with nothing but --database-url', () => {
  const backups = new Map<string, string>();

  it('gives each of five databases a backup of its own, under a target named after it', async () => {
    for (const database of DATABASES) {
      const result = await cli('backup', '--database-url', urlOf(database));
      expect(result.code, result.stderr).toBe(0);
      const line = result.stdout.split('\n').find((l) => l.startsWith(`${targetOf(database)} `));
      expect(line, result.stdout).toMatch(/ \d{8}T\d{6}Z(-\d+)?: .* dumped in /);
      backups.set(database, line!.split(' ')[1]!.replace(/:$/, ''));
      expect(result.stderr).not.toContain('warning:');
    }
  }, 1_200_000);

  it("restores each backup to exactly its own database's rows", async () => {
    await withStoredStack(stateDir, async (services) => {
      const listed = await listBackups(services);
      expect(listed.map((b) => b.target).sort()).toEqual(DATABASES.map(targetOf).sort());
      expect(listed.every((b) => b.verified)).toBe(true);

      for (const database of DATABASES) {
        const restoredUrl = urlOf(`${database}_restored`);
        await prepareRestoreTarget(restoredUrl);
        const restored = await restoreStep(services, {
          target: targetOf(database),
          backupId: backups.get(database)!,
          databaseUrl: restoredUrl,
          jobs: 2,
        });
        expect(restored.report.passed, JSON.stringify(restored.report.checks)).toBe(true);
        expect(await marker(restoredUrl)).toBe(database);
        expect(await tableContents(restoredUrl)).toEqual(sources.get(database));
      }
    });
  }, 1_200_000);

  it('warns on the command line and the operator, not as a failure, when a backup is under half the previous', async () => {
    // The same database (same source identity), most of its rows deleted: the next dump is a fraction of the last.
    await withClient(urlOf('kc_events'), (client) => client.query('delete from event_entity'));
    const outbox = path.join(stateDir, 'outbox.jsonl');
    const alertsBefore = (await readOutbox(outbox)).length;

    const result = await cli('backup', '--database-url', urlOf('kc_events'));

    expect(result.code, result.stderr).toBe(0);
    const target = targetOf('kc_events');
    const id = new RegExp(`^${target} (\\d{8}T\\d{6}Z(?:-\\d+)?): .* dumped in `, 'm').exec(
      result.stdout,
    )?.[1];
    expect(id, result.stdout).toBeDefined();
    expect(result.stderr).toMatch(
      new RegExp(
        `^warning: ${target} ${id}: dump is \\d+ bytes, less than half of the previous backup ${backups.get('kc_events')} \\(\\d+ bytes\\): check that ${target} still holds the data it should$`,
        'm',
      ),
    );
    const alerts = (await readOutbox(outbox)).slice(alertsBefore);
    expect(alerts).toEqual([
      expect.objectContaining({
        target,
        step: 'dump',
        error: 'DumpSizeWarning',
        severity: 'warning',
        subject: `keycloak-backup ${target}: warning: ${id} dump under half the previous size`,
      }),
    ]);
  }, 600_000);

  it('refuses another database under a target that holds one, showing both and what to do', async () => {
    const result = await cli(
      'backup',
      '--database-url',
      urlOf('kc_groups'),
      '--target-name',
      targetOf('kc_users'),
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /SourceMismatchError: target kc-users-[\w-]+ holds backups of database kc_users \(OID \d+\) of cluster \d+ .*; this is database kc_groups \(OID \d+\) of cluster \d+/,
    );
    expect(result.stderr).toContain('back up each database under its own target');
  }, 600_000);
});
