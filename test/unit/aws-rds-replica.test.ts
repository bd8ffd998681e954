// RdsReplicaMonitor over a mocked RDS: a dump starts only from a read replica that is up and replicating.
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

function build(instance?: Record<string, unknown>) {
  const client = new RDSClient({ region: 'eu-west-1' });
  const mock = mockClient(client);
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
  return { mock, monitor: new RdsReplicaMonitor({ targets: [target], client }) };
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
    const monitor = new RdsReplicaMonitor({ targets: [{ ...target, replicaInstanceId: undefined }], client });

    await expect(monitor.assertReplicating('kc')).rejects.toThrow('target kc has no replicaInstanceId');
  });
});
