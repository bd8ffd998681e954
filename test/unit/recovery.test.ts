// A kept point-in-time recovery on AWS: started as a workflow by the CLI, tagged as a recovery (never swept, deleted
// only when dropped), and its name rules.
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  RestoreDBInstanceToPointInTimeCommand,
} from '@aws-sdk/client-rds';
import { ListStateMachinesCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { AwsExecutor } from '../../cli/aws-executor.js';
import { RdsPointInTimeEngine } from '../../functions/adapters/aws/rds-pitr.js';
import { drillsToSweep } from '../../functions/core/drill.js';
import { InvalidInputError } from '../../functions/core/errors.js';
import { checkRecoveryName, parseRecoveryRequest } from '../../functions/core/recovery.js';

const NOW = new Date('2026-11-22T03:00:00Z');
const NAME = 'recovered-before-incident';
const RECOVER = 'arn:aws:states:eu-west-1:111122223333:stateMachine:keycloak-backup-prod-recover';
const recoveryTags = [
  { Key: 'pipeline', Value: 'keycloak-backup-dev' },
  { Key: 'recovery', Value: 'true' },
  { Key: 'target', Value: 'kc' },
];

function rdsEngine() {
  const client = new RDSClient({ region: 'eu-west-1' });
  const rds = mockClient(client);
  const engine = new RdsPointInTimeEngine({
    targets: [
      { name: 'kc', database: 'keycloak', replica: 'r.example', instanceId: 'kc-primary', secretArn: 's' },
    ],
    pipeline: 'keycloak-backup-dev',
    subnetGroup: 'kb-private',
    securityGroupIds: ['sg-123'],
    maxMinutes: 180,
    urls: { urlForEndpoint: async (_t, e) => `postgresql://u:p@${e.host}:${e.port}/keycloak` },
    client,
    clock: { now: () => NOW },
  });
  return { rds, engine };
}

const recovered = {
  DBInstanceIdentifier: NAME,
  DBInstanceStatus: 'available',
  InstanceCreateTime: new Date('2026-11-22T03:01:00Z'),
  Endpoint: { Address: `${NAME}.abc.eu-west-1.rds.amazonaws.com`, Port: 5432 },
  TagList: recoveryTags,
};

describe('a kept recovery on RDS', () => {
  it('is tagged as a recovery of this pipeline, with no drill tag and no expiry', async () => {
    const { rds, engine } = rdsEngine();
    rds.on(RestoreDBInstanceToPointInTimeCommand).resolves({
      DBInstance: { ...recovered, DBInstanceStatus: 'creating', Endpoint: undefined },
    });

    const instance = await engine.restore({
      target: 'kc',
      instanceId: NAME,
      time: 'latest',
      purpose: 'recovery',
    });

    expect(rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0]!.args[0].input.Tags).toEqual(
      recoveryTags,
    );
    expect(instance).toMatchObject({ instanceId: NAME, status: 'creating', purpose: 'recovery' });
  });

  it('is described and deleted as the pipeline’s own, and never swept however old', async () => {
    const { rds, engine } = rdsEngine();
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [recovered] });
    rds.on(DeleteDBInstanceCommand).resolves({});

    const described = await engine.describe(NAME);
    await engine.teardown(NAME);

    expect(described).toMatchObject({ status: 'available', purpose: 'recovery' });
    expect(described.databaseUrl).toContain(`${NAME}.abc.eu-west-1.rds.amazonaws.com`);
    expect(rds.commandCalls(DeleteDBInstanceCommand)[0]!.args[0].input.DBInstanceIdentifier).toBe(NAME);
    const aYearLater = new Date(NOW.getTime() + 365 * 24 * 3_600_000);
    // Even under a drill-like name, a recovery is never the sweeper's.
    const drillLike = { ...described, instanceId: 'drill-kc-20261122t030000' };
    expect(drillsToSweep([described, drillLike], aYearLater, 180)).toEqual([]);
  });
});

describe('recovery requests', () => {
  it('refuses a name the drill sweeper would take for its own, but drops one by such a name', () => {
    expect(() => checkRecoveryName('drill-kc-20261122t030000')).toThrow(InvalidInputError);
    expect(checkRecoveryName('drill-kc-20261122t030000', 'drop', false)).toBe('drill-kc-20261122t030000');
    expect(() => checkRecoveryName('Not_A_Name')).toThrow(/lower-case name/);
  });

  it('reads target, time and name, with the first target as the default', () => {
    expect(parseRecoveryRequest({ time: '2026-11-22T02:00:00Z', name: NAME }, ['kc', 'other'])).toEqual({
      target: 'kc',
      time: new Date('2026-11-22T02:00:00Z'),
      name: NAME,
    });
    expect(() => parseRecoveryRequest({ time: 'latest', name: NAME, target: 'nope' }, ['kc'])).toThrow(
      /unknown target "nope"/,
    );
  });
});

describe('pitr on AWS', () => {
  it('starts the deployed recover machine with the request, as it starts backups', async () => {
    const client = new SFNClient({ region: 'eu-west-1' });
    const sfn = mockClient(client);
    sfn.on(ListStateMachinesCommand).resolves({
      stateMachines: [
        {
          name: 'keycloak-backup-prod-recover',
          stateMachineArn: RECOVER,
          type: 'STANDARD',
          creationDate: NOW,
        },
      ],
    });
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${RECOVER}:x`, startDate: NOW });
    const executor = new AwsExecutor({ client, stage: 'prod' });

    await executor.start('recover', { target: 'kc', time: 'latest', name: NAME });

    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
      stateMachineArn: RECOVER,
      input: JSON.stringify({ target: 'kc', time: 'latest', name: NAME }),
      name: undefined,
    });
  });
});
