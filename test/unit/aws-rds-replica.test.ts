// RdsReplicaMonitor over mocked RDS and CloudWatch: a dump starts only from a read replica that is up, replicating
// and, by CloudWatch's ReplicaLag, within KB_REPLICA_MAX_LAG_SECONDS of its primary.
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { RdsReplicaMonitor } from '../../functions/adapters/aws/rds-replica.js';
import { ConfigurationError, StaleReplicaError, TransientError } from '../../functions/core/errors.js';
import { sdkError, throttled } from './aws-sdk-errors.js';

const target = {
  name: 'kc',
  database: 'keycloak',
  replica: 'kc-replica.abc.eu-west-1.rds.amazonaws.com',
  instanceId: 'kc',
  replicaInstanceId: 'kc-replica',
  secretArn: 'arn:s',
};

const NOW = new Date('2026-12-05T10:00:00Z');
const MAX_LAG = 300;
/** ReplicaLag datapoints as CloudWatch answers them: [seconds before NOW, lag in seconds]. */
const lagSeries = (points: [number, number][]) => ({
  MetricDataResults: [
    {
      Id: 'lag',
      Label: 'ReplicaLag',
      StatusCode: 'Complete' as const,
      Timestamps: points.map(([ago]) => new Date(NOW.getTime() - ago * 1000)),
      Values: points.map(([, lag]) => lag),
    },
  ],
});

function build(instance?: Record<string, unknown>) {
  const client = new RDSClient({ region: 'eu-west-1' });
  const mock = mockClient(client);
  const cloudWatch = new CloudWatchClient({ region: 'eu-west-1' });
  const metrics = mockClient(cloudWatch);
  metrics.on(GetMetricDataCommand).resolves(lagSeries([[60, 2]]));
  if (instance) {
    mock.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'kc-replica',
          DBInstanceStatus: 'available',
          ReadReplicaSourceDBInstanceIdentifier: 'kc',
          StatusInfos: [{ StatusType: 'read replication', Status: 'replicating', Normal: true }],
          ...instance,
        },
      ],
    });
  }
  const monitor = new RdsReplicaMonitor({
    targets: [target],
    client,
    cloudWatch,
    maxLagSeconds: MAX_LAG,
    clock: { now: () => NOW },
  });
  return { mock, metrics, monitor };
}

describe('RdsReplicaMonitor', () => {
  it('passes an available replica that is replicating, described by its identifier', async () => {
    const { mock, monitor } = build({});

    await monitor.assertReplicating('kc');

    expect(mock.commandCalls(DescribeDBInstancesCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: 'kc-replica' },
    ]);
  });

  it.each([
    ['error', false, 'Replication has stopped'],
    ['stopped', false, undefined],
    ['terminated', false, 'Replication terminated by the source'],
    ['replicating', false, 'Replica lag exceeds the threshold'],
  ])(
    'refuses read replication %s (normal %s) with StaleReplicaError and RDS message',
    async (status, normal, said) => {
      const { monitor } = build({
        StatusInfos: [{ StatusType: 'read replication', Status: status, Normal: normal, Message: said }],
      });

      const error = await monitor.assertReplicating('kc').catch((e: unknown) => e);

      expect(error).toBeInstanceOf(StaleReplicaError);
      expect((error as Error).message).toContain(
        `read replication of kc-replica (replica of kc) is ${status}`,
      );
      if (said) expect((error as Error).message).toContain(said);
    },
  );

  it.each(['rebooting', 'storage-full', 'stopped', 'incompatible-parameters'])(
    'refuses a replica that is %s with StaleReplicaError',
    async (state) => {
      const { monitor } = build({ DBInstanceStatus: state });

      await expect(monitor.assertReplicating('kc')).rejects.toThrow(
        expect.objectContaining({
          name: 'StaleReplicaError',
          message: expect.stringContaining(`the read replica kc-replica of kc is ${state}, not available`),
        }),
      );
    },
  );

  it('refuses an instance that is not a read replica, and one that does not exist, as configuration', async () => {
    const { monitor } = build({ ReadReplicaSourceDBInstanceIdentifier: undefined });
    await expect(monitor.assertReplicating('kc')).rejects.toThrow(
      /kc-replica, the replica of kc, is not a read replica/,
    );

    const missing = build();
    missing.mock.on(DescribeDBInstancesCommand).rejects(sdkError('DBInstanceNotFoundFault', 404));
    const error = await missing.monitor.assertReplicating('kc').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toBe('the read replica kc-replica of kc does not exist');
  });

  it('treats throttling after the SDK retries as transient', async () => {
    const { mock, monitor } = build();
    mock.on(DescribeDBInstancesCommand).rejects(throttled());

    await expect(monitor.assertReplicating('kc')).rejects.toBeInstanceOf(TransientError);
  });

  it('names a target without a replica instance id instead of guessing', async () => {
    const client = new RDSClient({ region: 'eu-west-1' });
    const monitor = new RdsReplicaMonitor({
      targets: [{ ...target, replicaInstanceId: undefined }],
      client,
      maxLagSeconds: MAX_LAG,
    });

    await expect(monitor.assertReplicating('kc')).rejects.toThrow('target kc has no replicaInstanceId');
  });
});

describe('RdsReplicaMonitor: CloudWatch ReplicaLag', () => {
  it("reads the replica's ReplicaLag, one-minute maxima of the last five minutes, newest first", async () => {
    const { metrics, monitor } = build({});

    await monitor.assertReplicating('kc');

    const input = metrics.commandCalls(GetMetricDataCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      StartTime: new Date(NOW.getTime() - 300_000),
      EndTime: NOW,
      ScanBy: 'TimestampDescending',
      MetricDataQueries: [
        {
          Id: 'lag',
          MetricStat: {
            Metric: {
              Namespace: 'AWS/RDS',
              MetricName: 'ReplicaLag',
              Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'kc-replica' }],
            },
            Period: 60,
            Stat: 'Maximum',
          },
        },
      ],
    });
  });

  it('refuses a replica whose newest ReplicaLag is above KB_REPLICA_MAX_LAG_SECONDS with StaleReplicaError', async () => {
    const { metrics, monitor } = build({});
    // Out of order on purpose: the newest (60 s ago) decides, not the first given.
    metrics.on(GetMetricDataCommand).resolves(
      lagSeries([
        [240, 12],
        [60, 301],
        [120, 40],
      ]),
    );

    const error = await monitor.assertReplicating('kc').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StaleReplicaError);
    expect((error as Error).message).toBe(
      "the read replica kc-replica of kc is 301 s behind its primary by CloudWatch's ReplicaLag at 2026-12-05T09:59:00.000Z (KB_REPLICA_MAX_LAG_SECONDS is 300): a dump from it would be stale",
    );
  });

  it('passes a replica whose newest ReplicaLag is within the limit although an older one was not', async () => {
    const { metrics, monitor } = build({});
    metrics.on(GetMetricDataCommand).resolves(
      lagSeries([
        [60, 300],
        [120, 900],
      ]),
    );

    await expect(monitor.assertReplicating('kc')).resolves.toBeUndefined();
  });

  it('refuses a negative ReplicaLag (RDS: not replicating) with StaleReplicaError', async () => {
    const { metrics, monitor } = build({});
    metrics.on(GetMetricDataCommand).resolves(lagSeries([[60, -1]]));

    await expect(monitor.assertReplicating('kc')).rejects.toThrow(
      /kc-replica of kc is -1 \(not replicating\) by CloudWatch's ReplicaLag/,
    );
  });

  it('refuses a replica with no ReplicaLag datapoint in five minutes: a lag nobody measures is not a small one', async () => {
    const { metrics, monitor } = build({});
    metrics.on(GetMetricDataCommand).resolves(lagSeries([]));

    const error = await monitor.assertReplicating('kc').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StaleReplicaError);
    expect((error as Error).message).toBe(
      'CloudWatch has no ReplicaLag of kc-replica (replica of kc) in the last 5 minutes: its lag cannot be told, so a dump from it may be stale',
    );
  });

  it('does not ask CloudWatch about a replica RDS already says is not replicating', async () => {
    const { metrics, monitor } = build({ DBInstanceStatus: 'rebooting' });

    await expect(monitor.assertReplicating('kc')).rejects.toBeInstanceOf(StaleReplicaError);
    expect(metrics.commandCalls(GetMetricDataCommand)).toHaveLength(0);
  });

  it('names the missing permission, and treats CloudWatch throttling as transient', async () => {
    const { metrics, monitor } = build({});
    metrics.on(GetMetricDataCommand).rejects(sdkError('AccessDenied', 403));
    const denied = await monitor.assertReplicating('kc').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ConfigurationError);
    expect((denied as ConfigurationError).hint).toMatch(/cloudwatch:GetMetricData/);

    metrics.on(GetMetricDataCommand).rejects(throttled());
    await expect(monitor.assertReplicating('kc')).rejects.toBeInstanceOf(TransientError);
  });
});
