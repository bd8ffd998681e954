// RDS manual snapshots of a target: create, describe, copy to the DR region under the DR key, list by tag, delete.
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  type DBSnapshot,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  type Tag,
} from '@aws-sdk/client-rds';
import {
  ConfigurationError,
  InvalidInputError,
  KeyUnavailableError,
  ObjectNotFoundError,
  QuotaExceededError,
  TransientError,
} from '../../core/errors.js';
import {
  type Clock,
  type SnapshotEngine,
  type SnapshotInfo,
  type SnapshotRequest,
  type SnapshotStatus,
  systemClock,
} from '../../core/ports.js';
import { findTarget, instanceIdOf, type Target } from '../../core/targets.js';
import { callAws, describeAwsError, isAwsError } from './errors.js';
import { KMS_HTTP_TIMEOUTS } from './http-timeouts.js';

export type Region = 'primary' | 'dr';

export const TAG_PIPELINE = 'pipeline';
export const TAG_TARGET = 'target';
export const TAG_BACKUP_ID = 'backupId';
export const TAG_RETAIN_UNTIL = 'retainUntil';

export interface RdsSnapshotEngineOptions {
  targets: readonly Target[];
  /** Value of the `pipeline` tag: what this engine lists and is allowed to delete. */
  pipeline: string;
  primaryRegion: string;
  drRegion: string;
  /** Customer-managed KMS key in the DR region that copies are encrypted under. */
  drKmsKeyArn: string;
  primaryClient?: RDSClient;
  drClient?: RDSClient;
  /** KMS in the primary region, to tell an AWS-managed source key (which cannot be copied across regions). */
  kmsClient?: KMSClient;
  clock?: Clock;
  /** Between two looks at a busy instance (tests pass a fake sleep). */
  busyPollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** How often create() looks again at an instance that is backing up (or otherwise busy). */
export const BUSY_POLL_MS = 20_000;

const QUOTA_HINT =
  'RDS keeps at most 100 manual snapshots per region by default: shorten the snapshot retention, snapshot fewer tiers (KB_SNAPSHOT_TIERS), or ask for a quota increase';

/** Manual snapshots of the targets' RDS instances, tagged so that the pipeline lists and deletes only its own. */
export class RdsSnapshotEngine implements SnapshotEngine {
  private readonly options: RdsSnapshotEngineOptions;
  private readonly clients: Record<Region, RDSClient>;
  private readonly kms: KMSClient;
  private readonly clock: Clock;
  private readonly awsManagedKeys = new Map<string, boolean>();

  constructor(options: RdsSnapshotEngineOptions) {
    this.options = options;
    this.clients = {
      primary: options.primaryClient ?? new RDSClient({ region: options.primaryRegion }),
      dr: options.drClient ?? new RDSClient({ region: options.drRegion }),
    };
    this.kms =
      options.kmsClient ??
      new KMSClient({ region: options.primaryRegion, requestHandler: KMS_HTTP_TIMEOUTS });
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Starts a manual snapshot. RDS refuses one while the instance is busy (InvalidDBInstanceState), above all while
   * its automated backup runs (`backing-up`, in the backup window, which the daily snapshot hour may fall into): so
   * this waits for `available` until `waitUntil` (the step's time) and only then gives up with a TransientError,
   * which the state machine retries.
   */
  async create(request: SnapshotRequest): Promise<SnapshotInfo> {
    const instanceId = this.instanceId(request.target);
    const snapshotId = rdsIdentifier(request.snapshotId);
    await this.waitUntilAvailable(instanceId, request.waitUntil ?? this.clock.now());
    const tags: Tag[] = [
      { Key: TAG_PIPELINE, Value: this.options.pipeline },
      { Key: TAG_TARGET, Value: request.target },
      { Key: TAG_BACKUP_ID, Value: request.backupId },
      { Key: TAG_RETAIN_UNTIL, Value: request.retainUntil.toISOString() },
    ];
    try {
      const { DBSnapshot } = await callAws(
        'rds:CreateDBSnapshot',
        () =>
          this.clients.primary.send(
            new CreateDBSnapshotCommand({
              DBSnapshotIdentifier: snapshotId,
              DBInstanceIdentifier: instanceId,
              Tags: tags,
            }),
          ),
        (error) => this.knownError(error, `snapshot ${snapshotId} of ${instanceId}`),
      );
      return this.info(DBSnapshot, 'primary', request.target, tags);
    } catch (error) {
      // A retried or duplicated run asks for the same snapshot again: it exists, so report it.
      if (!isAwsError(error, 'DBSnapshotAlreadyExists')) throw error;
      const existing = await this.describeRaw(snapshotId, 'primary');
      if (existing.DBInstanceIdentifier !== instanceId) {
        throw new ConfigurationError(
          `snapshot ${snapshotId} already exists for another instance (${existing.DBInstanceIdentifier})`,
          { hint: 'snapshot ids must be unique per region: include the target in the snapshot id' },
        );
      }
      return this.info(existing, 'primary', request.target);
    }
  }

  private async waitUntilAvailable(instanceId: string, waitUntil: Date): Promise<void> {
    const pollMs = this.options.busyPollMs ?? BUSY_POLL_MS;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
    for (;;) {
      const { DBInstances } = await callAws(
        'rds:DescribeDBInstances',
        () => this.clients.primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId })),
        (error) => this.knownError(error, `instance ${instanceId}`),
      );
      const status = DBInstances?.[0]?.DBInstanceStatus;
      if (status === 'available') return;
      if (this.clock.now().getTime() + pollMs > waitUntil.getTime()) {
        throw new TransientError(
          `instance ${instanceId} is ${status ?? 'in an unknown state'}, not available for a snapshot`,
          {
            hint:
              status === 'backing-up'
                ? "its automated backup is running: the snapshot waits and is retried; move the instance's backup window away from the daily hour (KB_DAILY_HOUR_UTC)"
                : 'RDS takes a snapshot of an available instance only; retried later',
          },
        );
      }
      await sleep(pollMs);
    }
  }

  async describe(target: string, snapshotId: string, region: Region): Promise<SnapshotInfo> {
    return this.info(await this.describeRaw(rdsIdentifier(snapshotId), region), region, target);
  }

  async copyToDr(target: string, snapshotId: string): Promise<SnapshotInfo> {
    const id = rdsIdentifier(snapshotId);
    const source = await this.describeRaw(id, 'primary');
    if (source.Status !== 'available') {
      throw new TransientError(
        `snapshot ${id} is ${source.Status ?? 'in an unknown state'}, not yet available`,
        {
          hint: 'a snapshot can be copied once it is available',
        },
      );
    }
    if (source.Encrypted && source.KmsKeyId && (await this.isAwsManagedKey(source.KmsKeyId))) {
      throw new ConfigurationError(
        `snapshot ${id} is encrypted with the AWS-managed aws/rds key, which cannot be used for a cross-region copy`,
        {
          hint: 'encrypt the instance with a customer-managed KMS key (restore or re-create it under such a key), then snapshots can be copied to the DR region',
        },
      );
    }
    if (!source.DBSnapshotArn) throw new TransientError(`RDS reported no ARN for snapshot ${id}`);
    try {
      const { DBSnapshot } = await callAws(
        'rds:CopyDBSnapshot',
        () =>
          this.clients.dr.send(
            new CopyDBSnapshotCommand({
              // The source's ARN names its region: from it the SDK's RDS middleware presigns the request in the
              // source region (PreSignedUrl), which a cross-region copy of an encrypted snapshot needs.
              SourceDBSnapshotIdentifier: source.DBSnapshotArn,
              TargetDBSnapshotIdentifier: id,
              KmsKeyId: this.options.drKmsKeyArn,
              CopyTags: true,
            }),
          ),
        (error) => this.knownError(error, `copy of snapshot ${id} to ${this.options.drRegion}`),
      );
      return this.info(DBSnapshot, 'dr', target, source.TagList);
    } catch (error) {
      if (!isAwsError(error, 'DBSnapshotAlreadyExists')) throw error;
      return this.info(await this.describeRaw(id, 'dr'), 'dr', target, source.TagList);
    }
  }

  async list(target: string, region: Region): Promise<SnapshotInfo[]> {
    const found: SnapshotInfo[] = [];
    let marker: string | undefined;
    do {
      const page = await callAws(
        'rds:DescribeDBSnapshots',
        () =>
          this.clients[region].send(
            new DescribeDBSnapshotsCommand({ SnapshotType: 'manual', MaxRecords: 100, Marker: marker }),
          ),
        (error) => this.knownError(error, `snapshots in ${this.regionName(region)}`),
      );
      for (const snapshot of page.DBSnapshots ?? []) {
        const tags = tagMap(snapshot.TagList);
        if (tags[TAG_PIPELINE] === this.options.pipeline && tags[TAG_TARGET] === target) {
          found.push(this.info(snapshot, region, target));
        }
      }
      marker = page.Marker;
    } while (marker);
    return found.sort((a, b) => a.snapshotId.localeCompare(b.snapshotId));
  }

  async delete(target: string, snapshotId: string, region: Region): Promise<void> {
    const id = rdsIdentifier(snapshotId);
    let snapshot: DBSnapshot;
    try {
      snapshot = await this.describeRaw(id, region);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return;
      throw error;
    }
    const tags = tagMap(snapshot.TagList);
    if (tags[TAG_PIPELINE] !== this.options.pipeline || tags[TAG_TARGET] !== target) {
      throw new InvalidInputError(
        `snapshot ${id} in ${this.regionName(region)} is not a ${this.options.pipeline} snapshot of ${target}: not deleting it`,
        { hint: 'the pipeline deletes only snapshots it tagged as its own' },
      );
    }
    try {
      await callAws(
        'rds:DeleteDBSnapshot',
        () => this.clients[region].send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: id })),
        (error) => this.knownError(error, `snapshot ${id}`),
      );
    } catch (error) {
      if (isAwsError(error, 'DBSnapshotNotFound')) return;
      throw error;
    }
  }

  private async describeRaw(snapshotId: string, region: Region): Promise<DBSnapshot> {
    const notFound = () =>
      new ObjectNotFoundError(`snapshot ${snapshotId} not found in ${this.regionName(region)}`, {
        hint: 'it was deleted, or never created: check the snapshot id',
      });
    const { DBSnapshots } = await callAws(
      'rds:DescribeDBSnapshots',
      () => this.clients[region].send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId })),
      (error) =>
        isAwsError(error, 'DBSnapshotNotFound')
          ? notFound()
          : this.knownError(error, `snapshot ${snapshotId}`),
    );
    const snapshot = DBSnapshots?.[0];
    if (!snapshot) throw notFound();
    return snapshot;
  }

  private async isAwsManagedKey(keyId: string): Promise<boolean> {
    const cached = this.awsManagedKeys.get(keyId);
    if (cached !== undefined) return cached;
    const { KeyMetadata } = await callAws(
      'kms:DescribeKey',
      () => this.kms.send(new DescribeKeyCommand({ KeyId: keyId })),
      (error) =>
        isAwsError(error, 'NotFound', 'AccessDenied', 'KMSInvalidState')
          ? new KeyUnavailableError(`the source snapshot's key ${keyId} cannot be described`, {
              cause: error,
              hint: "grant this role kms:DescribeKey on the instance's KMS key",
            })
          : undefined,
    );
    const managed = KeyMetadata?.KeyManager === 'AWS';
    this.awsManagedKeys.set(keyId, managed);
    return managed;
  }

  /** The fatal RDS errors every call can meet, named; undefined for the rest (transient ones are classified later). */
  private knownError(error: unknown, what: string): unknown {
    if (isAwsError(error, 'DBSnapshotAlreadyExists', 'DBSnapshotNotFound')) return undefined;
    if (isAwsError(error, 'SnapshotQuotaExceeded')) {
      return new QuotaExceededError(`${what}: the manual snapshot quota is reached`, {
        cause: error,
        hint: QUOTA_HINT,
      });
    }
    if (isAwsError(error, 'InvalidDBInstanceState', 'InvalidDBSnapshotState')) {
      return new TransientError(`${what}: ${describeAwsError(error)}`, {
        cause: error,
        hint: 'the instance or snapshot is busy (another snapshot, a modification, a backup window); retried later',
      });
    }
    if (isAwsError(error, 'KMSKeyNotAccessible')) {
      return new KeyUnavailableError(`${what}: ${describeAwsError(error)}`, {
        cause: error,
        hint: `check that the DR key ${this.options.drKmsKeyArn} is enabled and that this role may use it (kms:CreateGrant, kms:DescribeKey)`,
      });
    }
    if (isAwsError(error, 'DBInstanceNotFound')) {
      return new ConfigurationError(`${what}: the instance does not exist`, {
        cause: error,
        hint: 'check instanceId of the target in KB_TARGETS',
      });
    }
    if (isAwsError(error, 'AccessDenied')) {
      return new ConfigurationError(`${what}: access denied`, {
        cause: error,
        hint: "this function's IAM role lacks the RDS permission: redeploy the stack or check its policies",
      });
    }
    if (isAwsError(error, 'InvalidParameterValue', 'InvalidParameterCombination')) {
      // The 20-copies-in-flight limit surfaces as a refusal naming the concurrent copies: it clears by itself.
      if (/concurrent/i.test(describeAwsError(error))) {
        return new TransientError(`${what}: too many snapshot copies in flight`, {
          cause: error,
          hint: 'RDS allows 20 concurrent cross-region copies; retried later',
        });
      }
      return new ConfigurationError(`${what}: ${describeAwsError(error)}`, { cause: error });
    }
    return undefined;
  }

  private info(
    snapshot: DBSnapshot | undefined,
    region: Region,
    target: string,
    fallbackTags?: readonly Tag[],
  ): SnapshotInfo {
    if (!snapshot?.DBSnapshotIdentifier) {
      throw new TransientError(`RDS returned no snapshot in ${this.regionName(region)}`);
    }
    const tags = { ...tagMap(fallbackTags), ...tagMap(snapshot.TagList) };
    const retainUntil = tags[TAG_RETAIN_UNTIL] ? new Date(tags[TAG_RETAIN_UNTIL]) : undefined;
    return {
      snapshotId: snapshot.DBSnapshotIdentifier,
      target: tags[TAG_TARGET] ?? target,
      region: this.regionName(region),
      status: snapshotStatus(snapshot.Status),
      // A copy's own creation time is the copy's; retention counts from the original snapshot.
      createdAt: snapshot.OriginalSnapshotCreateTime ?? snapshot.SnapshotCreateTime ?? this.clock.now(),
      backupId: tags[TAG_BACKUP_ID],
      retainUntil: retainUntil && !Number.isNaN(retainUntil.getTime()) ? retainUntil : undefined,
      progress: snapshot.PercentProgress,
    };
  }

  private instanceId(target: string): string {
    return instanceIdOf(findTarget(this.options.targets, target));
  }

  private regionName(region: Region): string {
    return region === 'primary' ? this.options.primaryRegion : this.options.drRegion;
  }
}

/** RDS snapshot statuses folded into the port's four; anything not yet settled is still 'creating'. */
export function snapshotStatus(status: string | undefined): SnapshotStatus {
  switch (status) {
    case 'available':
      return 'available';
    case 'deleting':
      return 'deleting';
    case 'failed':
    case 'error':
    case 'incompatible-restore':
    case 'incompatible-parameters':
    case 'incompatible-network':
      return 'failed';
    default:
      return 'creating';
  }
}

/**
 * RDS identifiers: a letter, then letters, digits and single hyphens, at most 255; RDS stores them lower-case,
 * so we send them lower-case and compare what comes back.
 */
export function rdsIdentifier(id: string, maxLength = 255): string {
  const valid = /^[A-Za-z][A-Za-z0-9-]*$/.test(id) && !id.includes('--') && !id.endsWith('-');
  if (!valid || id.length > maxLength) {
    throw new InvalidInputError(`"${id}" is not a valid RDS identifier`, {
      hint: `a letter, then letters, digits and single hyphens, not ending in a hyphen, at most ${maxLength} characters`,
    });
  }
  return id.toLowerCase();
}

export function tagMap(tags: readonly Tag[] | undefined): Record<string, string> {
  const map: Record<string, string> = {};
  for (const tag of tags ?? []) {
    if (tag.Key !== undefined && tag.Value !== undefined) map[tag.Key] = tag.Value;
  }
  return map;
}
