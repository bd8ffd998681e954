// One disposable PostgreSQL cluster (no replica, no S3) for tests that only need a database: the same
// LocalPostgresCluster and fixture loader the local stack uses, in a temp dir, removed by stop().
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, LocalPostgresCluster } from '../../functions/adapters/local/postgres-cluster.js';
import { findPgBinaries, type PgBinaries } from '../../functions/adapters/postgres/binaries.js';
import { FIXTURE_OWNER, loadKeycloakFixture as loadFixture } from '../../local/fixture.js';

export interface ThrowawayCluster {
  port: number;
  url(database: string): string;
  /** Runs SQL (several statements are fine) in `database`. */
  psql(database: string, sql: string): Promise<void>;
  stop(): Promise<void>;
  readonly binaries: PgBinaries;
}

export async function startThrowawayCluster(): Promise<ThrowawayCluster> {
  const binaries = await findPgBinaries(undefined, { server: true });
  const baseDir = await mkdtemp(join(tmpdir(), 'kb-pg-'));
  const port = await freePort();
  const cluster = new LocalPostgresCluster({ name: 'test', baseDir, binaries, port });
  const stop = async () => {
    await cluster.stop().catch(() => undefined);
    await rm(baseDir, { recursive: true, force: true });
  };
  try {
    await cluster.initdb({ durable: false });
    await cluster.start();
  } catch (error) {
    await stop();
    throw error;
  }
  const psql = async (database: string, sql: string) => {
    const client = new pg.Client({ connectionString: cluster.url(database) });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return { port, url: (database) => cluster.url(database), psql, stop, binaries };
}

/** Creates `database` owned by the fixture's role and loads the Keycloak 26.0.8 fixture into it. */
export async function loadKeycloakFixture(cluster: ThrowawayCluster, database = 'keycloak'): Promise<void> {
  await cluster.psql(
    'postgres',
    `do $$ begin if not exists (select 1 from pg_roles where rolname = '${FIXTURE_OWNER}') then create role ${FIXTURE_OWNER}; end if; end $$`,
  );
  await cluster.psql('postgres', `create database ${database} owner ${FIXTURE_OWNER}`);
  await loadFixture({ binaries: cluster.binaries, url: cluster.url(database) });
}
