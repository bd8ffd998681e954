// The RDS view of a target's read replica before a dump: the instance is up and its replication is running.
import { type DBInstance, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { ConfigurationError, StaleReplicaError } from '../../core/errors.js';
import type { ReplicaMonitor } from '../../core/ports.js';
import { findTarget, type Target } from '../../core/targets.js';
import { callAws, describeAwsError, isAwsError } from './errors.js';

/** Instance states in which a replica answers queries with its replayed data. */
const SERVING = new Set([
  'available',
  'backing-up',
  'configuring-enhanced-monitoring',
  'configuring-log-exports',
]);

export interface RdsReplicaMonitorOptions {
  targets: readonly Target[];
  region?: string;
  client?: RDSClient;
}

/**
 * Asks RDS about the replica named by the target's `replicaInstanceId`: it must be a read replica, in a state that
 * serves queries, and its read replication must be `replicating` and normal. Anything else (replication `error`,
 * `stopped` or `terminated`, an instance rebooting, storage full, stopped) is a StaleReplicaError naming the
 * replica, its state and RDS's message: a dump from it would miss what the primary has, or fail midway. How far
 * behind a replicating replica is, is measured against the primary's WAL position where the primary is known.
 */
export class RdsReplicaMonitor implements ReplicaMonitor {
  private readonly targets: readonly Target[];
  private readonly client: RDSClient;

  constructor(options: RdsReplicaMonitorOptions) {
    this.targets = options.targets;
    this.client = options.client ?? new RDSClient({ region: options.region });
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
  }
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
