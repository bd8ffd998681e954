// The RDS view of a target's read replica before a dump: the instance is up, its replication running, its lag small.
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { type DBInstance, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { ConfigurationError, StaleReplicaError } from '../../core/errors.js';
import { type Clock, type ReplicaMonitor, systemClock } from '../../core/ports.js';
import { findTarget, type Target } from '../../core/targets.js';
import { callAws, describeAwsError, isAwsError } from './errors.js';

/** Instance states in which a replica answers queries with its replayed data. */
const SERVING = new Set([
  'available',
  'backing-up',
  'configuring-enhanced-monitoring',
  'configuring-log-exports',
]);

/**
 * How far back the newest ReplicaLag datapoint may lie: RDS publishes it every minute, so five minutes without one
 * is not a delay of CloudWatch but a replica whose lag nobody measures.
 */
export const REPLICA_LAG_WINDOW_SECONDS = 300;

export interface RdsReplicaMonitorOptions {
  targets: readonly Target[];
  /** KB_REPLICA_MAX_LAG_SECONDS: a replica whose newest ReplicaLag is above it is stale. */
  maxLagSeconds: number;
  region?: string;
  client?: RDSClient;
  cloudWatch?: CloudWatchClient;
  clock?: Clock;
}

/**
 * Asks RDS about the replica named by the target's `replicaInstanceId`: it must be a read replica, in a state that
 * serves queries, and its read replication must be `replicating` and normal. Anything else (replication `error`,
 * `stopped` or `terminated`, an instance rebooting, storage full, stopped) is a StaleReplicaError naming the
 * replica, its state and RDS's message: a dump from it would miss what the primary has, or fail midway. Then
 * CloudWatch's ReplicaLag of the replica (AWS/RDS, the newest one-minute maximum of the last five minutes) must be
 * at most `maxLagSeconds`; above it, negative (RDS's "not replicating"), or with no datapoint in those five
 * minutes (a lag nobody measures is not a small one), the replica is stale too. Where the primary is known, the
 * lag is also measured against the primary's WAL position, as locally.
 */
export class RdsReplicaMonitor implements ReplicaMonitor {
  private readonly targets: readonly Target[];
  private readonly client: RDSClient;
  private readonly cloudWatch: CloudWatchClient;
  private readonly maxLagSeconds: number;
  private readonly clock: Clock;

  constructor(options: RdsReplicaMonitorOptions) {
    this.targets = options.targets;
    this.client = options.client ?? new RDSClient({ region: options.region });
    this.cloudWatch = options.cloudWatch ?? new CloudWatchClient({ region: options.region });
    this.maxLagSeconds = options.maxLagSeconds;
    this.clock = options.clock ?? systemClock;
  }

  async assertReplicating(targetName: string): Promise<void> {
    const target = findTarget(this.targets, targetName);
    const replicaId = target.replicaInstanceId;
    if (!replicaId) {
      throw new ConfigurationError(`target ${targetName} has no replicaInstanceId`, {
        hint: 'set "replicaInstanceId" on the target in KB_TARGETS to the RDS instance identifier of its read replica (serverless.yml: the replicaInstanceId param)',
      });
    }
    const { DBInstances } = await callAws(
      'rds:DescribeDBInstances',
      () => this.client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: replicaId })),
      (error) =>
        isAwsError(error, 'DBInstanceNotFound')
          ? new ConfigurationError(`the read replica ${replicaId} of ${targetName} does not exist`, {
              cause: error,
              hint: 'set "replicaInstanceId" on the target in KB_TARGETS to the identifier of its read replica',
            })
          : isAwsError(error, 'AccessDenied')
            ? new ConfigurationError(
                `cannot describe the read replica ${replicaId}: ${describeAwsError(error)}`,
                {
                  cause: error,
                  hint: 'the dump function may call rds:DescribeDBInstances on its replica (serverless/iam.cjs)',
                },
              )
            : undefined,
    );
    const replica = DBInstances?.[0];
    if (!replica) {
      throw new ConfigurationError(`the read replica ${replicaId} of ${targetName} does not exist`, {
        hint: 'set "replicaInstanceId" on the target in KB_TARGETS to the identifier of its read replica',
      });
    }
    assertServingReplica(targetName, replicaId, replica);
    await this.assertLagWithin(targetName, replicaId);
  }

  private async assertLagWithin(target: string, replicaId: string): Promise<void> {
    const now = this.clock.now();
    const { MetricDataResults } = await callAws(
      'cloudwatch:GetMetricData',
      () =>
        this.cloudWatch.send(
          new GetMetricDataCommand({
            StartTime: new Date(now.getTime() - REPLICA_LAG_WINDOW_SECONDS * 1000),
            EndTime: now,
            ScanBy: 'TimestampDescending',
            MetricDataQueries: [
              {
                Id: 'lag',
                MetricStat: {
                  Metric: {
                    Namespace: 'AWS/RDS',
                    MetricName: 'ReplicaLag',
                    Dimensions: [{ Name: 'DBInstanceIdentifier', Value: replicaId }],
                  },
                  Period: 60,
                  Stat: 'Maximum',
                  Unit: 'Seconds',
                },
              },
            ],
          }),
        ),
      (error) =>
        isAwsError(error, 'AccessDenied') || isAwsError(error, 'AccessDeniedException')
          ? new ConfigurationError(`cannot read the ReplicaLag of ${replicaId}: ${describeAwsError(error)}`, {
              cause: error,
              hint: 'the dump function may call cloudwatch:GetMetricData (serverless/iam.cjs)',
            })
          : undefined,
    );
    const series = MetricDataResults?.find((result) => result.Id === 'lag');
    const newest = newestDatapoint(series?.Timestamps ?? [], series?.Values ?? []);
    const allowed = `KB_REPLICA_MAX_LAG_SECONDS is ${this.maxLagSeconds}`;
    const fallback = 'or set KB_STALE_REPLICA_ACTION=primary to dump from the primary meanwhile';
    if (!newest) {
      throw new StaleReplicaError(
        `CloudWatch has no ReplicaLag of ${replicaId} (replica of ${target}) in the last ${REPLICA_LAG_WINDOW_SECONDS / 60} minutes: its lag cannot be told, so a dump from it may be stale`,
        {
          hint: `RDS publishes ReplicaLag every minute for a replica that replicates: check the replica and its metrics, ${fallback}`,
        },
      );
    }
    if (newest.value < 0 || newest.value > this.maxLagSeconds) {
      const lag =
        newest.value < 0
          ? `${newest.value} (not replicating)`
          : `${Math.round(newest.value)} s behind its primary`;
      throw new StaleReplicaError(
        `the read replica ${replicaId} of ${target} is ${lag} by CloudWatch's ReplicaLag at ${newest.at.toISOString()} (${allowed}): a dump from it would be stale`,
        {
          hint: `find what holds the replica back (a long query with hot_standby_feedback, I/O, instance class), raise KB_REPLICA_MAX_LAG_SECONDS, ${fallback}`,
        },
      );
    }
  }
}

/** The newest (timestamp, value) pair, whatever order CloudWatch gave them in. */
function newestDatapoint(
  timestamps: readonly Date[],
  values: readonly number[],
): { at: Date; value: number } | undefined {
  let newest: { at: Date; value: number } | undefined;
  timestamps.forEach((at, i) => {
    const value = values[i];
    if (value === undefined || !Number.isFinite(value)) return;
    if (!newest || at.getTime() > newest.at.getTime()) newest = { at, value };
  });
  return newest;
}

function assertServingReplica(target: string, replicaId: string, replica: DBInstance): void {
  if (!replica.ReadReplicaSourceDBInstanceIdentifier) {
    throw new ConfigurationError(`${replicaId}, the replica of ${target}, is not a read replica`, {
      hint: 'a dump from a primary adds load to it and a standalone instance may hold anything: set "replicaInstanceId" to the read replica of the target\'s instance',
    });
  }
  const state = replica.DBInstanceStatus ?? 'unknown';
  if (!SERVING.has(state)) {
    throw new StaleReplicaError(
      `the read replica ${replicaId} of ${target} is ${state}, not available: a dump from it would be stale or fail`,
      {
        hint: 'wait for the replica to be available (RDS console, events), or set KB_STALE_REPLICA_ACTION=primary to dump from the primary meanwhile',
      },
    );
  }
  const replication = replica.StatusInfos?.find((info) => info.StatusType === 'read replication');
  if (replication && (replication.Status !== 'replicating' || replication.Normal === false)) {
    const said = replication.Message ? `: ${replication.Message}` : '';
    throw new StaleReplicaError(
      `read replication of ${replicaId} (replica of ${target}) is ${replication.Status ?? 'unknown'}${said}: a dump from it would be stale`,
      {
        hint: 'repair or recreate the read replica (RDS events say why replication stopped), or set KB_STALE_REPLICA_ACTION=primary to dump from the primary meanwhile',
      },
    );
  }
}
