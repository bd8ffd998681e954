// Freshness is checked, not assumed: a backup from a replica whose replay is paused (or too far behind) is a named
// error and an alert, or a dump from the primary when so configured; the manifest records the measured lag.
import path from 'node:path';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdsReplicaMonitor } from '../../functions/adapters/aws/rds-replica.js';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { TransientError } from '../../functions/core/errors.js';
import type { Manifest } from '../../functions/core/manifest.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readManifest } from '../../functions/core/stored-backups.js';
import type { LambdaEntry } from '../../functions/handlers/index.js';
import { databaseTools } from '../../functions/platform/common-wiring.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { runWorkflow } from '../../local/workflow.js';
import { hourlyRun, useTestStack } from '../support/stack.js';

const ctx = useTestStack({ seed: false });
const servicesWith = (env: Record<string, string>) =>
  localServices(
    parseConfig({ ...ctx.stack.env(), KB_FULL_VERIFY_TIERS: '', ...env }),
    createLogger({ silent: true }),
  );

/** Runs the backup of `time`, which must succeed, and reads its manifest. */
async function backupAt(services: Services, time: Date): Promise<Manifest> {
  const result = await runWorkflow({ machine: 'backup', input: { time: time.toISOString() }, services });
  expect(result.status, result.cause).toBe('SUCCEEDED');
  return readManifest(services.primaryStore, services.envelope, 'keycloak', backupIdFor(time));
}

beforeAll(async () => {
  await ctx.stack.primary.query('create table marker (id int)', [], 'keycloak');
  await ctx.stack.primary.query('insert into marker select generate_series(1, 1000)', [], 'keycloak');
  await ctx.stack.waitForReplay();
  await ctx.stack.replica.query('select pg_wal_replay_pause()');
  await ctx.stack.primary.query('insert into marker values (1001)', [], 'keycloak');
});

afterAll(async () => {
  await ctx.stack.replica.query('select pg_wal_replay_resume()').catch(() => undefined);
});

describe('a replica whose replay is paused', () => {
  it('fails the backup with StaleReplicaError and an alert, storing nothing', async () => {
    const services = await servicesWith({ KB_REPLICA_MAX_LAG_SECONDS: '2' });
    const time = hourlyRun(2);

    const result = await runWorkflow({ machine: 'backup', input: { time: time.toISOString() }, services });

    expect(result.status).toBe('FAILED');
    const alert = (await readOutbox(services.config.KB_OUTBOX_FILE!)).at(-1);
    expect(alert).toMatchObject({ target: 'keycloak', error: 'StaleReplicaError' });
    expect(alert?.cause).toContain('replay is paused');
    await expect(
      readManifest(services.primaryStore, services.envelope, 'keycloak', backupIdFor(time)),
    ).rejects.toThrow();
  });

  it('dumps from the primary instead with KB_STALE_REPLICA_ACTION=primary, all 1,001 rows', async () => {
    const services = await servicesWith({
      KB_REPLICA_MAX_LAG_SECONDS: '2',
      KB_STALE_REPLICA_ACTION: 'primary',
    });

    const manifest = await backupAt(services, hourlyRun(3));

    expect(manifest.source.endpointRole).toBe('primary');
    expect(manifest.contents.tableCounts.marker).toBe(1001);
  });

  it('records the measured lag once replay runs again', async () => {
    await ctx.stack.replica.query('select pg_wal_replay_resume()');
    const services = await servicesWith({ KB_REPLICA_MAX_LAG_SECONDS: '30' });

    const manifest = await backupAt(services, hourlyRun(4));

    expect(manifest.source.endpointRole).toBe('replica');
    expect(manifest.source.replicaLagSeconds).not.toBeNull();
    expect(manifest.source.replicaLagSeconds).toBeLessThan(30);
    expect(manifest.contents.tableCounts.marker).toBe(1001);
  });
});

describe('a replica RDS says is not replicating', () => {
  /** The local services with the dump's freshness check asking RDS (mocked) about the replica, as on AWS. */
  const servicesWithRds = async (env: Record<string, string>, replication: Record<string, unknown>) => {
    const services = await servicesWith(env);
    const rds = new RDSClient({ region: 'eu-west-1' });
    const mock = mockClient(rds);
    mock.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'keycloak-replica',
          DBInstanceStatus: 'available',
          ReadReplicaSourceDBInstanceIdentifier: 'keycloak',
          StatusInfos: [{ StatusType: 'read replication', ...replication }],
        },
      ],
    });
    // CloudWatch's ReplicaLag is small: RDS's replication status decides in these cases.
    const cloudWatch = new CloudWatchClient({ region: 'eu-west-1' });
    mockClient(cloudWatch)
      .on(GetMetricDataCommand)
      .resolves({ MetricDataResults: [{ Id: 'lag', Timestamps: [new Date()], Values: [1] }] });
    const targets = services.config.KB_TARGETS.map((t) => ({ ...t, replicaInstanceId: 'keycloak-replica' }));
    const tools = databaseTools(services.config, {
      binaries: services.binaries,
      databases: services.databases,
      envelope: services.envelope,
      tempDir: path.join(services.config.KB_LOCAL_STATE_DIR!, 'tmp'),
      replicaMonitor: new RdsReplicaMonitor({
        targets,
        client: rds,
        cloudWatch,
        maxLagSeconds: services.config.KB_REPLICA_MAX_LAG_SECONDS,
      }),
    });
    return { services: { ...services, tools }, mock };
  };
  const broken = { Status: 'error', Normal: false, Message: 'Replication has stopped (WAL segment removed)' };

  it("fails the dump with StaleReplicaError naming the replica and RDS's message, alerted, storing nothing", async () => {
    await ctx.stack.replica.query('select pg_wal_replay_resume()');
    const { services, mock } = await servicesWithRds({}, broken);
    const time = hourlyRun(6);

    const result = await runWorkflow({ machine: 'backup', input: { time: time.toISOString() }, services });

    expect(result.status).toBe('FAILED');
    expect(mock.commandCalls(DescribeDBInstancesCommand)[0]!.args[0].input).toEqual({
      DBInstanceIdentifier: 'keycloak-replica',
    });
    const alert = (await readOutbox(services.config.KB_OUTBOX_FILE!)).at(-1);
    expect(alert).toMatchObject({ target: 'keycloak', step: 'dump', error: 'StaleReplicaError' });
    expect(alert?.execution).toBeTruthy();
    expect(alert?.cause).toContain('read replication of keycloak-replica (replica of keycloak) is error');
    expect(alert?.cause).toContain('WAL segment removed');
    await expect(
      readManifest(services.primaryStore, services.envelope, 'keycloak', backupIdFor(time)),
    ).rejects.toThrow();
  });

  it('dumps from the primary instead with KB_STALE_REPLICA_ACTION=primary', async () => {
    const { services } = await servicesWithRds({ KB_STALE_REPLICA_ACTION: 'primary' }, broken);

    const manifest = await backupAt(services, hourlyRun(7));

    expect(manifest.source.endpointRole).toBe('primary');
  });

  it('dumps from the replica when RDS says it is replicating', async () => {
    const { services, mock } = await servicesWithRds({}, { Status: 'replicating', Normal: true });

    const manifest = await backupAt(services, hourlyRun(8));

    expect(mock.commandCalls(DescribeDBInstancesCommand).length).toBeGreaterThan(0);
    expect(manifest.source.endpointRole).toBe('replica');
  });
});

describe('a replica that does not answer', () => {
  it('tells the error and its cause with every retry, not just "retried"', async () => {
    const services = await servicesWith({});
    const unreachable = (): LambdaEntry => async () => {
      throw new TransientError('database 127.0.0.1:1/keycloak is not reachable (ECONNREFUSED)');
    };

    const result = await runWorkflow({
      machine: 'backup',
      input: { time: hourlyRun(5).toISOString() },
      services,
      retryIntervalMs: 1,
      wrap: { planBackup: unreachable },
    });

    expect(result.status).toBe('FAILED');
    const retries = result.events.filter((event) => event.type === 'StateRetried');
    expect(retries.length).toBeGreaterThan(0);
    for (const retry of retries) {
      expect(retry).toMatchObject({ state: 'PlanBackup', error: 'TransientError' });
      expect(retry.cause).toContain('ECONNREFUSED');
    }
  });
});
