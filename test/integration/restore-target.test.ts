// The database a manual restore writes into, on a real cluster: really empty, never a template, dropped on failure.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../../functions/adapters/postgres/connect.js';
import { prepareRestoreTarget } from '../../functions/adapters/postgres/restore-target.js';
import { InvalidInputError } from '../../functions/core/errors.js';
import { startThrowawayCluster, type ThrowawayCluster } from '../support/throwaway-cluster.js';

let cluster: ThrowawayCluster;
const PASSWORD = 'restorer-test-password';

/** A URL as the restoring role, which may create databases but holds no grants on other roles' tables. */
function asRestorer(database: string): string {
  const url = new URL(cluster.url(database));
  url.username = 'restorer';
  url.password = PASSWORD;
  return url.toString();
}

async function exists(database: string): Promise<boolean> {
  return withClient(cluster.url('postgres'), async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    return Boolean(rowCount);
  });
}

beforeAll(async () => {
  cluster = await startThrowawayCluster();
  await cluster.psql('postgres', `create role restorer login createdb password '${PASSWORD}'`);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('prepareRestoreTarget', () => {
  it("sees a table the restoring role has no grant on (another role's, in pg_class)", async () => {
    await cluster.psql('postgres', 'create database mixed owner restorer');
    await cluster.psql(
      'mixed',
      'create schema hidden; create table hidden.secret (x int); revoke all on schema hidden from public',
    );
    const error = await prepareRestoreTarget(asRestorer('mixed')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toMatch(/already has 1 tables or other relations/);
  });

  it('refuses template0, template1, postgres and any template database', async () => {
    for (const name of ['template0', 'template1', 'postgres']) {
      await expect(prepareRestoreTarget(asRestorer(name))).rejects.toThrow(
        new RegExp(`refuses to write into database ${name}`),
      );
    }
    await cluster.psql('postgres', 'create database golden owner restorer is_template true');
    await expect(prepareRestoreTarget(asRestorer('golden'))).rejects.toThrow(/database golden is a template/);
  });

  it('creates a new database, and a failed restore drops it so the next attempt starts clean', async () => {
    const target = await prepareRestoreTarget(asRestorer('fresh_restore'));
    expect(target.created).toBe(true);
    // A half-done restore leaves a table behind; the next attempt would be refused.
    await withClient(asRestorer('fresh_restore'), (client) => client.query('create table half (x int)'));
    await expect(prepareRestoreTarget(asRestorer('fresh_restore'))).rejects.toThrow(/already has 1/);
    await target.reset();
    await expect(prepareRestoreTarget(asRestorer('fresh_restore'))).resolves.toMatchObject({
      created: false,
    });
    expect(await target.discard()).toBe(true);
    expect(await exists('fresh_restore')).toBe(false);
    const again = await prepareRestoreTarget(asRestorer('fresh_restore'));
    expect(again.created).toBe(true);
    await again.discard();
  });

  it('never drops a database it did not create', async () => {
    await cluster.psql('postgres', 'create database kept owner restorer');
    const target = await prepareRestoreTarget(asRestorer('kept'));
    expect(target.created).toBe(false);
    expect(await target.discard()).toBe(false);
    expect(await exists('kept')).toBe(true);
  });
});
