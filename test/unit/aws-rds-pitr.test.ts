import {
  type DBInstance,
  DeleteDBInstanceCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  RestoreDBInstanceToPointInTimeCommand,
} from '@aws-sdk/client-rds';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { drillStatus, RdsPointInTimeEngine } from '../../functions/adapters/aws/rds-pitr.js';
import type { EndpointUrls } from '../../functions/adapters/aws/secrets-locator.js';
import {
  ConfigurationError,
  InvalidInputError,
  QuotaExceededError,
  RestoreWindowError,
  TransientError,
} from '../../functions/core/errors.js';
import type { TargetConfig } from '../../functions/platform/config.js';
import { sdkError, serverError, throttled } from './aws-sdk-errors.js';

const NOW = new Date('2026-11-22T03:00:00Z');
const DRILL = 'drill-kc-20261122t030000';
const targets: TargetConfig[] = [
  { name: 'kc', database: 'keycloak', replica: 'replica.example', instanceId: 'kc-primary', secretArn: 's' },
];
const drillTags = [
  { Key: 'pipeline', Value: 'keycloak-backup-dev' },
  { Key: 'drill', Value: 'true' },
  { Key: 'target', Value: 'kc' },
  { Key: 'expiresAt', Value: '2026-11-22T06:00:00.000Z' },
];

function instance(overrides: Partial<DBInstance> = {}): DBInstance {
  return {
    DBInstanceIdentifier: DRILL,
    DBInstanceStatus: 'available',
    InstanceCreateTime: new Date('2026-11-22T03:01:00Z'),
    Endpoint: { Address: `${DRILL}.abc.eu-west-1.rds.amazonaws.com`, Port: 5432 },
    TagList: drillTags,
    ...overrides,
  };
}

const source: DBInstance = {
  DBInstanceIdentifier: 'kc-primary',
  DbiResourceId: 'db-ABC',
  BackupRetentionPeriod: 7,
  LatestRestorableTime: new Date('2026-11-22T02:55:00Z'),
  DBInstanceStatus: 'available',
  TagList: [],
};

describe('RdsPointInTimeEngine', () => {
  let rds: AwsClientStub<RDSClient>;
  let urls: EndpointUrls & { calls: unknown[] };
  let engine: RdsPointInTimeEngine;
  const build = (overrides: Partial<ConstructorParameters<typeof RdsPointInTimeEngine>[0]> = {}) => {
    const client = new RDSClient({ region: 'eu-west-1' });
    rds = mockClient(client);
    const calls: unknown[] = [];
    urls = {
      calls,
      urlForEndpoint: async (target, endpoint) => {
        calls.push({ target, endpoint });
        return `postgresql://u:p@${endpoint.host}:${endpoint.port}/keycloak?sslmode=verify-full`;
      },
    };
    return new RdsPointInTimeEngine({
      targets,
      pipeline: 'keycloak-backup-dev',
      subnetGroup: 'kb-private',
      securityGroupIds: ['sg-123'],
      maxMinutes: 180,
      urls,
      client,
      clock: { now: () => NOW },
      ...overrides,
    });
  };

  beforeEach(() => {
    engine = build();
  });

  describe('restorableWindow', () => {
    it('reads the latest time from the instance and the earliest from its own automated backups', async () => {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [source] });
      rds.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({
        DBInstanceAutomatedBackups: [
          {
            DbiResourceId: 'db-OLD',
            Status: 'retained',
            RestoreWindow: { EarliestTime: new Date('2026-10-01T00:00:00Z') },
          },
          {
            DbiResourceId: 'db-ABC',
            Status: 'active',
            RestoreWindow: { EarliestTime: new Date('2026-11-15T03:00:00Z') },
          },
        ],
      });

      const window = await engine.restorableWindow('kc');

      expect(window).toEqual({
        earliest: new Date('2026-11-15T03:00:00Z'),
        latest: new Date('2026-11-22T02:55:00Z'),
      });
      expect(rds.commandCalls(DescribeDBInstancesCommand)[0]!.args[0].input).toEqual({
        DBInstanceIdentifier: 'kc-primary',
      });
      expect(rds.commandCalls(DescribeDBInstanceAutomatedBackupsCommand)[0]!.args[0].input).toEqual({
        DbiResourceId: 'db-ABC',
      });
    });

    it('says why there is no window when automated backups are off', async () => {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ ...source, BackupRetentionPeriod: 0 }] });

      await expect(engine.restorableWindow('kc')).rejects.toThrow(
        /automated backups are turned off|turned off/,
      );
    });

    it('refuses when no automated backup exists yet', async () => {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [source] });
      rds.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [] });

      await expect(engine.restorableWindow('kc')).rejects.toBeInstanceOf(RestoreWindowError);
    });
  });

  describe('restore', () => {
    it('restores into a private, tagged, deletable instance in the configured subnets', async () => {
      rds.on(RestoreDBInstanceToPointInTimeCommand).resolves({
        DBInstance: instance({ DBInstanceStatus: 'creating', Endpoint: undefined }),
      });
      const time = new Date('2026-11-22T02:00:00Z');

      const drill = await engine.restore({ target: 'kc', instanceId: DRILL, time });

      expect(rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0]!.args[0].input).toEqual({
        SourceDBInstanceIdentifier: 'kc-primary',
        TargetDBInstanceIdentifier: DRILL,
        RestoreTime: time,
        DBSubnetGroupName: 'kb-private',
        VpcSecurityGroupIds: ['sg-123'],
        PubliclyAccessible: false,
        DeletionProtection: false,
        MultiAZ: false,
        BackupRetentionPeriod: 0,
        AutoMinorVersionUpgrade: false,
        CopyTagsToSnapshot: false,
        Tags: drillTags,
      });
      expect(drill).toEqual({
        instanceId: DRILL,
        target: 'kc',
        status: 'creating',
        createdAt: new Date('2026-11-22T03:01:00Z'),
      });
    });

    it('asks for the latest restorable time and the configured class', async () => {
      engine = build({ instanceClass: 'db.t4g.medium' });
      rds
        .on(RestoreDBInstanceToPointInTimeCommand)
        .resolves({ DBInstance: instance({ DBInstanceStatus: 'creating' }) });

      await engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' });

      const input = rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0]!.args[0].input;
      expect(input.UseLatestRestorableTime).toBe(true);
      expect(input.RestoreTime).toBeUndefined();
      expect(input.DBInstanceClass).toBe('db.t4g.medium');
    });

    it('refuses to restore without a subnet group (it would land in the default VPC)', async () => {
      engine = build({ subnetGroup: undefined });

      await expect(
        engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' }),
      ).rejects.toBeInstanceOf(ConfigurationError);
      expect(rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)).toHaveLength(0);
    });

    it('reports the running drill when a retried start finds it already there', async () => {
      rds.on(RestoreDBInstanceToPointInTimeCommand).rejects(sdkError('DBInstanceAlreadyExistsFault', 400));
      rds
        .on(DescribeDBInstancesCommand)
        .resolves({ DBInstances: [instance({ DBInstanceStatus: 'creating' })] });

      const drill = await engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' });

      expect(drill.status).toBe('creating');
    });

    it('names a time outside the window, a quota, and a busy source', async () => {
      rds.on(RestoreDBInstanceToPointInTimeCommand).rejects(sdkError('InvalidRestoreFault', 400));
      await expect(
        engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' }),
      ).rejects.toBeInstanceOf(RestoreWindowError);
      rds.on(RestoreDBInstanceToPointInTimeCommand).rejects(sdkError('InstanceQuotaExceededFault', 400));
      await expect(
        engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' }),
      ).rejects.toBeInstanceOf(QuotaExceededError);
      rds.on(RestoreDBInstanceToPointInTimeCommand).rejects(sdkError('InvalidDBInstanceStateFault', 400));
      await expect(
        engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' }),
      ).rejects.toBeInstanceOf(TransientError);
    });

    it('turns throttling and 5xx into TransientError', async () => {
      rds.on(RestoreDBInstanceToPointInTimeCommand).rejects(throttled('Throttling'));
      await expect(
        engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' }),
      ).rejects.toBeInstanceOf(TransientError);
      rds.on(RestoreDBInstanceToPointInTimeCommand).rejects(serverError());
      await expect(
        engine.restore({ target: 'kc', instanceId: DRILL, time: 'latest' }),
      ).rejects.toBeInstanceOf(TransientError);
    });
  });

  describe('describe', () => {
    it("gives the database URL of an available drill, with the source's credentials", async () => {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance()] });

      const drill = await engine.describe(DRILL);

      expect(drill.status).toBe('available');
      expect(drill.databaseUrl).toBe(
        `postgresql://u:p@${DRILL}.abc.eu-west-1.rds.amazonaws.com:5432/keycloak?sslmode=verify-full`,
      );
      expect(urls.calls).toEqual([
        { target: 'kc', endpoint: { host: `${DRILL}.abc.eu-west-1.rds.amazonaws.com`, port: 5432 } },
      ]);
    });

    it('reports a drill that no longer exists as gone', async () => {
      rds.on(DescribeDBInstancesCommand).rejects(sdkError('DBInstanceNotFoundFault', 404));

      const drill = await engine.describe(DRILL);

      expect(drill.status).toBe('gone');
      expect(drill.databaseUrl).toBeUndefined();
    });

    it('refuses to describe an instance that is not a drill of this pipeline', async () => {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance({ TagList: [] })] });

      await expect(engine.describe(DRILL)).rejects.toBeInstanceOf(InvalidInputError);
      expect(urls.calls).toHaveLength(0);
    });
  });

  describe('teardown', () => {
    it('deletes the drill without a final snapshot and with its automated backups', async () => {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance()] });
      rds.on(DeleteDBInstanceCommand).resolves({});

      await engine.teardown(DRILL);

      expect(rds.commandCalls(DeleteDBInstanceCommand)[0]!.args[0].input).toEqual({
        DBInstanceIdentifier: DRILL,
        SkipFinalSnapshot: true,
        DeleteAutomatedBackups: true,
      });
    });

    it('succeeds when the drill is already gone or already deleting', async () => {
      rds.on(DescribeDBInstancesCommand).rejects(sdkError('DBInstanceNotFoundFault', 404));
      await engine.teardown(DRILL);
      rds
        .on(DescribeDBInstancesCommand)
        .resolves({ DBInstances: [instance({ DBInstanceStatus: 'deleting' })] });
      await engine.teardown(DRILL);
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance()] });
      rds.on(DeleteDBInstanceCommand).rejects(sdkError('DBInstanceNotFoundFault', 404));
      await engine.teardown(DRILL);

      expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(1);
    });

    it('never deletes an instance that is not tagged as a drill of this pipeline', async () => {
      rds.on(DescribeDBInstancesCommand).resolves({
        DBInstances: [instance({ DBInstanceIdentifier: 'kc-primary', TagList: [drillTags[0]!] })],
      });

      await expect(engine.teardown('kc-primary')).rejects.toBeInstanceOf(InvalidInputError);
      expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(0);
    });

    it('retries later when the drill is busy and not yet deleting', async () => {
      rds
        .on(DescribeDBInstancesCommand)
        .resolves({ DBInstances: [instance({ DBInstanceStatus: 'creating' })] });
      rds.on(DeleteDBInstanceCommand).rejects(sdkError('InvalidDBInstanceStateFault', 400));

      await expect(engine.teardown(DRILL)).rejects.toBeInstanceOf(TransientError);
    });
  });

  describe('listDrills', () => {
    it("pages through instances and keeps this pipeline's drills", async () => {
      rds
        .on(DescribeDBInstancesCommand, { Marker: undefined })
        .resolves({ DBInstances: [source, instance()], Marker: 'm2' })
        .on(DescribeDBInstancesCommand, { Marker: 'm2' })
        .resolves({
          DBInstances: [
            instance({ DBInstanceIdentifier: 'drill-kc-20261115t030000', DBInstanceStatus: 'deleting' }),
            instance({ DBInstanceIdentifier: 'drill-other', TagList: [{ Key: 'drill', Value: 'true' }] }),
          ],
        });

      const drills = await engine.listDrills();

      expect(drills.map((d) => [d.instanceId, d.status, d.target])).toEqual([
        [DRILL, 'available', 'kc'],
        ['drill-kc-20261115t030000', 'deleting', 'kc'],
      ]);
      expect(rds.commandCalls(DescribeDBInstancesCommand).map((c) => c.args[0].input)).toEqual([
        { MaxRecords: 100, Marker: undefined },
        { MaxRecords: 100, Marker: 'm2' },
      ]);
    });
  });

  it('folds RDS instance statuses into the port’s', () => {
    expect(drillStatus('available')).toBe('available');
    expect(drillStatus('creating')).toBe('creating');
    expect(drillStatus('modifying')).toBe('creating');
    expect(drillStatus('incompatible-restore')).toBe('failed');
    expect(drillStatus('deleting')).toBe('deleting');
  });
});
