// Point-in-time restore drills on RDS: restorable window, restore into a tagged private instance, describe, tear down.
import {
  type DBInstance,
  DeleteDBInstanceCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  RestoreDBInstanceToPointInTimeCommand,
  type Tag,
} from '@aws-sdk/client-rds';
import {
  ConfigurationError,
  InvalidInputError,
  KeyUnavailableError,
  QuotaExceededError,
  RestoreWindowError,
  TransientError,
} from '../../core/errors.js';
import {
  type Clock,
  type DrillInstance,
  type DrillInstanceStatus,
  type PointInTimeEngine,
  type RestorableWindow,
  systemClock,
} from '../../core/ports.js';
import { findTarget, instanceIdOf, type Target } from '../../core/targets.js';
import { callAws, describeAwsError, isAwsError } from './errors.js';
import { rdsIdentifier, TAG_PIPELINE, TAG_TARGET, tagMap } from './rds-snapshots.js';
import type { EndpointUrls } from './secrets-locator.js';

export const TAG_DRILL = 'drill';
/** A kept point-in-time recovery (`keycloak-backup pitr`): no expiry, never swept, deleted only by `pitr --drop`. */
export const TAG_RECOVERY = 'recovery';
export const TAG_EXPIRES_AT = 'expiresAt';

export interface RdsPointInTimeEngineOptions {
  targets: readonly Target[];
  /** Value of the `pipeline` tag: drills carry it, and only instances carrying it are ever deleted. */
  pipeline: string;
  /** DB subnet group of the drill instances: without it RDS would restore into the default VPC. */
  subnetGroup?: string;
  securityGroupIds: readonly string[];
  /** The source's class when unset. */
  instanceClass?: string;
  /** Time limit of a drill: written into the expiresAt tag the sweeper reads. */
  maxMinutes: number;
  /** Credentials for the restored instance: those of the source (a restore keeps its users). */
  urls: EndpointUrls;
  client?: RDSClient;
  region?: string;
  clock?: Clock;
}

/** Drill instances are RDS instances; their identifiers are at most 63 characters. */
const INSTANCE_ID_MAX = 63;

export class RdsPointInTimeEngine implements PointInTimeEngine {
  private readonly options: RdsPointInTimeEngineOptions;
  private readonly client: RDSClient;
  private readonly clock: Clock;

  constructor(options: RdsPointInTimeEngineOptions) {
    this.options = options;
    this.client = options.client ?? new RDSClient({ region: options.region });
    this.clock = options.clock ?? systemClock;
  }

  async restorableWindow(target: string): Promise<RestorableWindow> {
    const sourceId = this.sourceInstanceId(target);
    const source = await this.describeRaw(sourceId);
    if (!source) {
      throw new ConfigurationError(`the instance ${sourceId} of target ${target} does not exist`, {
        hint: 'check instanceId of the target in KB_TARGETS',
      });
    }
    if (source.BackupRetentionPeriod === 0) {
      throw new ConfigurationError(
        `instance ${sourceId} has automated backups turned off: no point-in-time restore`,
        {
          hint: 'set a backup retention period of at least 1 day on the instance',
        },
      );
    }
    const { DBInstanceAutomatedBackups } = await callAws(
      'rds:DescribeDBInstanceAutomatedBackups',
      () =>
        this.client.send(
          new DescribeDBInstanceAutomatedBackupsCommand(
            source.DbiResourceId
              ? { DbiResourceId: source.DbiResourceId }
              : { DBInstanceIdentifier: sourceId },
          ),
        ),
      (error) => this.knownError(error, `automated backups of ${sourceId}`),
    );
    // Retained backups of an earlier instance of the same name are not this instance's window.
    const backup = (DBInstanceAutomatedBackups ?? []).find(
      (b) =>
        b.RestoreWindow?.EarliestTime && (!source.DbiResourceId || b.DbiResourceId === source.DbiResourceId),
    );
    const earliest = backup?.RestoreWindow?.EarliestTime;
    const latest = source.LatestRestorableTime;
    if (!earliest || !latest) {
      throw new RestoreWindowError(`instance ${sourceId} has no restorable window yet`, {
        hint: 'a new instance, or one whose backups were just turned on, is restorable after its first automated backup',
      });
    }
    return { earliest, latest };
  }

  async restore(request: {
    target: string;
    instanceId: string;
    time: Date | 'latest';
    purpose?: 'drill' | 'recovery';
  }): Promise<DrillInstance> {
    const sourceId = this.sourceInstanceId(request.target);
    const instanceId = rdsIdentifier(request.instanceId, INSTANCE_ID_MAX);
    const { subnetGroup, securityGroupIds } = this.options;
    if (!subnetGroup || securityGroupIds.length === 0) {
      throw new ConfigurationError('restore drills need a DB subnet group and security groups', {
        hint: 'set KB_DRILL_SUBNET_GROUP and KB_DRILL_SECURITY_GROUP_IDS, or RDS would put the drill in the default VPC',
      });
    }
    const expiresAt = new Date(this.clock.now().getTime() + this.options.maxMinutes * 60_000);
    const tags: Tag[] =
      request.purpose === 'recovery'
        ? [
            { Key: TAG_PIPELINE, Value: this.options.pipeline },
            { Key: TAG_RECOVERY, Value: 'true' },
            { Key: TAG_TARGET, Value: request.target },
          ]
        : [
            { Key: TAG_PIPELINE, Value: this.options.pipeline },
            { Key: TAG_DRILL, Value: 'true' },
            { Key: TAG_TARGET, Value: request.target },
            { Key: TAG_EXPIRES_AT, Value: expiresAt.toISOString() },
          ];
    try {
      const { DBInstance } = await callAws(
        'rds:RestoreDBInstanceToPointInTime',
        () =>
          this.client.send(
            new RestoreDBInstanceToPointInTimeCommand({
              SourceDBInstanceIdentifier: sourceId,
              TargetDBInstanceIdentifier: instanceId,
              ...(request.time === 'latest'
                ? { UseLatestRestorableTime: true }
                : { RestoreTime: request.time }),
              DBSubnetGroupName: subnetGroup,
              VpcSecurityGroupIds: [...securityGroupIds],
              PubliclyAccessible: false,
              DeletionProtection: false,
              MultiAZ: false,
              // A drill is disposable: no automated backups of it (faster to become available, nothing left behind).
              BackupRetentionPeriod: 0,
              AutoMinorVersionUpgrade: false,
              CopyTagsToSnapshot: false,
              ...(this.options.instanceClass ? { DBInstanceClass: this.options.instanceClass } : {}),
              Tags: tags,
            }),
          ),
        (error) => this.knownError(error, `restore of ${sourceId} into ${instanceId}`),
      );
      return this.drill(DBInstance, instanceId, request.target);
    } catch (error) {
      // A retried start finds its instance already there: report it rather than fail the drill.
      if (!isAwsError(error, 'DBInstanceAlreadyExists')) throw error;
      const existing = await this.describeRaw(instanceId);
      if (!existing || !this.isOurDrill(existing)) {
        throw new InvalidInputError(
          `an instance named ${instanceId} exists and is not a drill of this pipeline`,
          {
            cause: error,
            hint: 'choose another drill id',
          },
        );
      }
      return this.describe(instanceId);
    }
  }

  async describe(instanceId: string): Promise<DrillInstance> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    const instance = await this.describeRaw(id);
    if (!instance) return { instanceId: id, target: '', status: 'gone', createdAt: this.clock.now() };
    this.assertOurDrill(instance, id);
    const drill = this.drill(instance, id, tagMap(instance.TagList)[TAG_TARGET] ?? '');
    const endpoint = instance.Endpoint;
    if (drill.status === 'available' && endpoint?.Address) {
      drill.databaseUrl = await this.options.urls.urlForEndpoint(drill.target, {
        host: endpoint.Address,
        port: endpoint.Port,
      });
    }
    return drill;
  }

  async teardown(instanceId: string): Promise<void> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    const instance = await this.describeRaw(id);
    if (!instance) return;
    this.assertOurDrill(instance, id);
    if (drillStatus(instance.DBInstanceStatus) === 'deleting') return;
    try {
      await callAws(
        'rds:DeleteDBInstance',
        () =>
          this.client.send(
            new DeleteDBInstanceCommand({
              DBInstanceIdentifier: id,
              SkipFinalSnapshot: true,
              DeleteAutomatedBackups: true,
            }),
          ),
        (error) => this.knownError(error, `deletion of drill ${id}`),
      );
    } catch (error) {
      if (isAwsError(error, 'DBInstanceNotFound')) return;
      // Busy (say, still being created): fine if someone else already started deleting it; otherwise try again.
      if (error instanceof TransientError) {
        const now = await this.describeRaw(id);
        if (!now || drillStatus(now.DBInstanceStatus) === 'deleting') return;
      }
      throw error;
    }
  }

  async listDrills(): Promise<DrillInstance[]> {
    const drills: DrillInstance[] = [];
    let marker: string | undefined;
    do {
      // DescribeDBInstances cannot filter by tag: page through and keep ours.
      const page = await callAws(
        'rds:DescribeDBInstances',
        () => this.client.send(new DescribeDBInstancesCommand({ MaxRecords: 100, Marker: marker })),
        (error) => this.knownError(error, 'instances'),
      );
      for (const instance of page.DBInstances ?? []) {
        if (instance.DBInstanceIdentifier && this.isOurDrill(instance)) {
          drills.push(
            this.drill(instance, instance.DBInstanceIdentifier, tagMap(instance.TagList)[TAG_TARGET] ?? ''),
          );
        }
      }
      marker = page.Marker;
    } while (marker);
    return drills;
  }

  /** The instance, or undefined when it does not exist. */
  private async describeRaw(instanceId: string): Promise<DBInstance | undefined> {
    try {
      const { DBInstances } = await callAws(
        'rds:DescribeDBInstances',
        () => this.client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId })),
        (error) => this.knownError(error, `instance ${instanceId}`),
      );
      return DBInstances?.[0];
    } catch (error) {
      if (isAwsError(error, 'DBInstanceNotFound')) return undefined;
      throw error;
    }
  }

  private isOurDrill(instance: DBInstance): boolean {
    const tags = tagMap(instance.TagList);
    return (
      tags[TAG_PIPELINE] === this.options.pipeline &&
      (tags[TAG_DRILL] === 'true' || tags[TAG_RECOVERY] === 'true')
    );
  }

  /** The guard that keeps a drill id from ever naming, and deleting, a production instance. */
  private assertOurDrill(instance: DBInstance, instanceId: string): void {
    if (!this.isOurDrill(instance)) {
      throw new InvalidInputError(
        `instance ${instanceId} is not a restore drill of ${this.options.pipeline}`,
        {
          hint: `the pipeline only touches instances tagged ${TAG_PIPELINE}=${this.options.pipeline} and ${TAG_DRILL}=true (or ${TAG_RECOVERY}=true)`,
        },
      );
    }
  }

  private drill(instance: DBInstance | undefined, instanceId: string, target: string): DrillInstance {
    const recovery = tagMap(instance?.TagList)[TAG_RECOVERY] === 'true';
    return {
      instanceId: instance?.DBInstanceIdentifier ?? instanceId,
      target,
      status: drillStatus(instance?.DBInstanceStatus ?? 'creating'),
      createdAt: instance?.InstanceCreateTime ?? this.clock.now(),
      ...(recovery ? { purpose: 'recovery' as const } : {}),
    };
  }

  private sourceInstanceId(target: string): string {
    return instanceIdOf(findTarget(this.options.targets, target));
  }

  private knownError(error: unknown, what: string): unknown {
    if (isAwsError(error, 'DBInstanceNotFound', 'DBInstanceAlreadyExists')) return undefined;
    if (isAwsError(error, 'InvalidRestore')) {
      return new RestoreWindowError(`${what}: ${describeAwsError(error)}`, {
        cause: error,
        hint: 'ask for a time inside the restorable window (keycloak-backup drill --help)',
      });
    }
    if (isAwsError(error, 'PointInTimeRestoreNotEnabled')) {
      return new ConfigurationError(`${what}: point-in-time restore is not enabled`, {
        cause: error,
        hint: 'set a backup retention period of at least 1 day on the instance',
      });
    }
    if (isAwsError(error, 'InstanceQuotaExceeded', 'StorageQuotaExceeded')) {
      return new QuotaExceededError(`${what}: ${describeAwsError(error)}`, {
        cause: error,
        hint: 'delete unused instances (keycloak-backup sweeps old drills) or ask for a quota increase',
      });
    }
    if (isAwsError(error, 'InvalidDBInstanceState', 'InsufficientDBInstanceCapacity')) {
      return new TransientError(`${what}: ${describeAwsError(error)}`, {
        cause: error,
        hint: 'the instance is busy or the zone lacks capacity for the class; retried later',
      });
    }
    if (isAwsError(error, 'KMSKeyNotAccessible')) {
      return new KeyUnavailableError(`${what}: ${describeAwsError(error)}`, {
        cause: error,
        hint: "check that the instance's KMS key is enabled and that this role may use it",
      });
    }
    if (
      isAwsError(
        error,
        'DBSubnetGroupNotFound',
        'InvalidSubnet',
        'InvalidVPCNetworkState',
        'DBSubnetGroupDoesNotCoverEnoughAZs',
        'StorageTypeNotSupported',
        'InvalidParameterValue',
        'InvalidParameterCombination',
        'AccessDenied',
      )
    ) {
      return new ConfigurationError(`${what}: ${describeAwsError(error)}`, {
        cause: error,
        hint: 'check KB_DRILL_SUBNET_GROUP, KB_DRILL_SECURITY_GROUP_IDS, KB_DRILL_INSTANCE_CLASS and the role of this function',
      });
    }
    return undefined;
  }
}

/** RDS instance statuses folded into the port's five: connectable, still coming, broken, going. */
export function drillStatus(status: string | undefined): DrillInstanceStatus {
  switch (status) {
    case 'available':
    case 'backing-up':
    case 'storage-optimization':
      return 'available';
    case 'deleting':
    case 'delete-precheck':
      return 'deleting';
    case 'failed':
    case 'restore-error':
    case 'incompatible-restore':
    case 'incompatible-network':
    case 'incompatible-parameters':
    case 'incompatible-option-group':
    case 'inaccessible-encryption-credentials':
    case 'inaccessible-encryption-credentials-recoverable':
    case 'insufficient-capacity':
    case 'storage-full':
    case 'stopped':
      return 'failed';
    default:
      return 'creating';
  }
}
