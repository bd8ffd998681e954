import { Readable } from 'node:stream';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  type DBSnapshot,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  RdsSnapshotEngine,
  rdsIdentifier,
  snapshotStatus,
} from '../../functions/adapters/aws/rds-snapshots.js';
import {
  ConfigurationError,
  InvalidInputError,
  KeyUnavailableError,
  ObjectNotFoundError,
  QuotaExceededError,
  TransientError,
} from '../../functions/core/errors.js';
import type { TargetConfig } from '../../functions/platform/config.js';
import { sdkError, serverError, throttled } from './aws-sdk-errors.js';

const DR_KEY = 'arn:aws:kms:eu-central-1:111122223333:key/2222bbbb-2222-bbbb-2222-bbbb2222bbbb';
const SOURCE_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-1111-aaaa-1111-aaaa1111aaaa';
const SNAPSHOT_ARN = 'arn:aws:rds:eu-west-1:111122223333:snapshot:kb-kc-20261122t0000z';
const targets: TargetConfig[] = [
  { name: 'kc', database: 'keycloak', replica: 'replica.example', instanceId: 'kc-primary', secretArn: 's' },
  { name: 'noinstance', database: 'keycloak', replica: 'replica.example' },
];
const retainUntil = new Date('2026-12-06T00:00:00.000Z');
const ourTags = [
  { Key: 'pipeline', Value: 'keycloak-backup-dev' },
  { Key: 'target', Value: 'kc' },
  { Key: 'backupId', Value: '20261122T0000Z' },
  { Key: 'retainUntil', Value: retainUntil.toISOString() },
];

function snapshot(overrides: Partial<DBSnapshot> = {}): DBSnapshot {
  return {
    DBSnapshotIdentifier: 'kb-kc-20261122t0000z',
    DBSnapshotArn: SNAPSHOT_ARN,
    DBInstanceIdentifier: 'kc-primary',
    Status: 'available',
    PercentProgress: 100,
    SnapshotCreateTime: new Date('2026-11-22T00:01:00Z'),
    Encrypted: true,
    KmsKeyId: SOURCE_KEY,
    TagList: ourTags,
    ...overrides,
  };
}

describe('RdsSnapshotEngine', () => {
  let primary: AwsClientStub<RDSClient>;
  let dr: AwsClientStub<RDSClient>;
  let kms: AwsClientStub<KMSClient>;
  let engine: RdsSnapshotEngine;
  let now: Date;
  let slept: number[];

  beforeEach(() => {
    now = new Date('2026-11-22T00:05:00Z');
    slept = [];
    const primaryClient = new RDSClient({ region: 'eu-west-1' });
    const drClient = new RDSClient({ region: 'eu-central-1' });
    const kmsClient = new KMSClient({ region: 'eu-west-1' });
    primary = mockClient(primaryClient);
    dr = mockClient(drClient);
    kms = mockClient(kmsClient);
    engine = new RdsSnapshotEngine({
      targets,
      pipeline: 'keycloak-backup-dev',
      primaryRegion: 'eu-west-1',
      drRegion: 'eu-central-1',
      drKmsKeyArn: DR_KEY,
      primaryClient,
      drClient,
      kmsClient,
      clock: { now: () => now },
      busyPollMs: 20_000,
      sleep: async (ms) => {
        slept.push(ms);
        now = new Date(now.getTime() + ms);
      },
    });
    primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: 'available' }] });
  });

  const createRequest = {
    target: 'kc',
    snapshotId: 'kb-kc-20261122t0000z',
    backupId: '20261122T0000Z',
    retainUntil,
  };

  describe('create', () => {
    it('creates a tagged manual snapshot of the target instance', async () => {
      primary
        .on(CreateDBSnapshotCommand)
        .resolves({ DBSnapshot: snapshot({ Status: 'creating', PercentProgress: 0 }) });

      const info = await engine.create(createRequest);

      expect(primary.commandCalls(CreateDBSnapshotCommand)[0]!.args[0].input).toEqual({
        DBSnapshotIdentifier: 'kb-kc-20261122t0000z',
        DBInstanceIdentifier: 'kc-primary',
        Tags: ourTags,
      });
      expect(info).toEqual({
        snapshotId: 'kb-kc-20261122t0000z',
        target: 'kc',
        region: 'eu-west-1',
        status: 'creating',
        createdAt: new Date('2026-11-22T00:01:00Z'),
        backupId: '20261122T0000Z',
        retainUntil,
        progress: 0,
      });
    });

    it('waits while the instance is backing up, then creates the snapshot', async () => {
      primary
        .on(DescribeDBInstancesCommand)
        .resolvesOnce({ DBInstances: [{ DBInstanceStatus: 'backing-up' }] })
        .resolvesOnce({ DBInstances: [{ DBInstanceStatus: 'backing-up' }] })
        .resolves({ DBInstances: [{ DBInstanceStatus: 'available' }] });
      primary.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot({ Status: 'creating' }) });

      const info = await engine.create({
        ...createRequest,
        waitUntil: new Date(now.getTime() + 10 * 60_000),
      });

      expect(info.status).toBe('creating');
      expect(slept).toEqual([20_000, 20_000]);
      expect(primary.commandCalls(DescribeDBInstancesCommand)[0]!.args[0].input).toEqual({
        DBInstanceIdentifier: 'kc-primary',
      });
      expect(primary.commandCalls(CreateDBSnapshotCommand)).toHaveLength(1);
    });

    it('gives up with a transient error naming the backup window when the step time runs out', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: 'backing-up' }] });

      const error = await engine
        .create({ ...createRequest, waitUntil: new Date(now.getTime() + 60_000) })
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(TransientError);
      expect((error as TransientError).message).toMatch(/kc-primary is backing-up/);
      expect((error as TransientError).hint).toMatch(/backup window/);
      expect(slept).toEqual([20_000, 20_000, 20_000]);
      expect(primary.commandCalls(CreateDBSnapshotCommand)).toHaveLength(0);
    });

    it('reports the existing snapshot when a retried run asks for it again', async () => {
      primary.on(CreateDBSnapshotCommand).rejects(sdkError('DBSnapshotAlreadyExistsFault', 400));
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ Status: 'creating' })] });

      const info = await engine.create(createRequest);

      expect(info.status).toBe('creating');
      expect(primary.commandCalls(DescribeDBSnapshotsCommand)[0]!.args[0].input).toEqual({
        DBSnapshotIdentifier: 'kb-kc-20261122t0000z',
      });
    });

    it('refuses to adopt an existing snapshot of another instance', async () => {
      primary.on(CreateDBSnapshotCommand).rejects(sdkError('DBSnapshotAlreadyExistsFault', 400));
      primary
        .on(DescribeDBSnapshotsCommand)
        .resolves({ DBSnapshots: [snapshot({ DBInstanceIdentifier: 'other' })] });

      await expect(engine.create(createRequest)).rejects.toBeInstanceOf(ConfigurationError);
    });

    it('names the snapshot quota with a hint', async () => {
      primary.on(CreateDBSnapshotCommand).rejects(sdkError('SnapshotQuotaExceededFault', 400));

      const error = await engine.create(createRequest).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(QuotaExceededError);
      expect((error as QuotaExceededError).hint).toMatch(/100 manual snapshots/);
    });

    it('treats a busy instance, throttling and 5xx as transient', async () => {
      primary.on(CreateDBSnapshotCommand).rejects(sdkError('InvalidDBInstanceStateFault', 400));
      await expect(engine.create(createRequest)).rejects.toBeInstanceOf(TransientError);
      primary.on(CreateDBSnapshotCommand).rejects(throttled('Throttling'));
      await expect(engine.create(createRequest)).rejects.toBeInstanceOf(TransientError);
      primary.on(CreateDBSnapshotCommand).rejects(serverError());
      await expect(engine.create(createRequest)).rejects.toBeInstanceOf(TransientError);
    });

    it('refuses a target without an instance id and an invalid snapshot id before calling RDS', async () => {
      await expect(engine.create({ ...createRequest, target: 'noinstance' })).rejects.toBeInstanceOf(
        ConfigurationError,
      );
      await expect(engine.create({ ...createRequest, snapshotId: 'kb--bad' })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
      expect(primary.commandCalls(CreateDBSnapshotCommand)).toHaveLength(0);
    });
  });

  describe('describe', () => {
    it('maps status and progress, and counts a copy from the original snapshot time', async () => {
      dr.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: [
          snapshot({
            Status: 'copying',
            PercentProgress: 40,
            SnapshotCreateTime: new Date('2026-11-22T01:00:00Z'),
            OriginalSnapshotCreateTime: new Date('2026-11-22T00:01:00Z'),
          }),
        ],
      });

      const info = await engine.describe('kc', 'kb-kc-20261122T0000Z', 'dr');

      expect(dr.commandCalls(DescribeDBSnapshotsCommand)[0]!.args[0].input).toEqual({
        DBSnapshotIdentifier: 'kb-kc-20261122t0000z',
      });
      expect(info).toMatchObject({
        region: 'eu-central-1',
        status: 'creating',
        progress: 40,
        createdAt: new Date('2026-11-22T00:01:00Z'),
      });
    });

    it('names a missing snapshot', async () => {
      primary.on(DescribeDBSnapshotsCommand).rejects(sdkError('DBSnapshotNotFoundFault', 404));

      await expect(engine.describe('kc', 'kb-kc-x', 'primary')).rejects.toBeInstanceOf(ObjectNotFoundError);
    });
  });

  describe('copyToDr', () => {
    it('copies the snapshot by ARN into the DR region under the DR key, with its tags', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot()] });
      kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: SOURCE_KEY, KeyManager: 'CUSTOMER' } });
      dr.on(CopyDBSnapshotCommand).resolves({
        DBSnapshot: snapshot({ Status: 'pending', PercentProgress: 0, TagList: [], KmsKeyId: DR_KEY }),
      });

      const info = await engine.copyToDr('kc', 'kb-kc-20261122t0000z');

      expect(dr.commandCalls(CopyDBSnapshotCommand)[0]!.args[0].input).toEqual({
        SourceDBSnapshotIdentifier: SNAPSHOT_ARN,
        TargetDBSnapshotIdentifier: 'kb-kc-20261122t0000z',
        KmsKeyId: DR_KEY,
        CopyTags: true,
      });
      expect(info).toMatchObject({ region: 'eu-central-1', status: 'creating', backupId: '20261122T0000Z' });
    });

    it('fails clearly when the source snapshot uses the AWS-managed aws/rds key', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot()] });
      kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: SOURCE_KEY, KeyManager: 'AWS' } });

      const error = await engine.copyToDr('kc', 'kb-kc-20261122t0000z').catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toMatch(/aws\/rds/);
      expect(dr.commandCalls(CopyDBSnapshotCommand)).toHaveLength(0);
    });

    it('reports the existing copy when a retried run copies again', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot()] });
      kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: SOURCE_KEY, KeyManager: 'CUSTOMER' } });
      dr.on(CopyDBSnapshotCommand).rejects(sdkError('DBSnapshotAlreadyExistsFault', 400));
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ Status: 'available' })] });

      const info = await engine.copyToDr('kc', 'kb-kc-20261122t0000z');

      expect(info).toMatchObject({ region: 'eu-central-1', status: 'available' });
    });

    it('waits (transiently) for a source that is not yet available', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ Status: 'creating' })] });

      await expect(engine.copyToDr('kc', 'kb-kc-20261122t0000z')).rejects.toBeInstanceOf(TransientError);
    });

    it('names an unusable DR key and treats too many copies in flight as transient', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ Encrypted: false })] });
      dr.on(CopyDBSnapshotCommand).rejects(sdkError('KMSKeyNotAccessibleFault', 400));
      await expect(engine.copyToDr('kc', 'kb-kc-20261122t0000z')).rejects.toBeInstanceOf(KeyUnavailableError);

      dr.on(CopyDBSnapshotCommand).rejects(
        sdkError('InvalidParameterCombination', 400, 'Cannot copy more than 20 snapshots concurrently'),
      );
      await expect(engine.copyToDr('kc', 'kb-kc-20261122t0000z')).rejects.toBeInstanceOf(TransientError);
    });
  });

  describe('list', () => {
    it("pages through manual snapshots and keeps this pipeline's snapshots of the target", async () => {
      dr.on(DescribeDBSnapshotsCommand, { Marker: undefined })
        .resolves({
          DBSnapshots: [
            snapshot({ DBSnapshotIdentifier: 'kb-kc-b' }),
            snapshot({ DBSnapshotIdentifier: 'someone-else', TagList: [] }),
          ],
          Marker: 'page2',
        })
        .on(DescribeDBSnapshotsCommand, { Marker: 'page2' })
        .resolves({
          DBSnapshots: [
            snapshot({ DBSnapshotIdentifier: 'kb-kc-a' }),
            snapshot({
              DBSnapshotIdentifier: 'kb-other-a',
              TagList: [ourTags[0]!, { Key: 'target', Value: 'other' }],
            }),
          ],
        });

      const found = await engine.list('kc', 'dr');

      expect(found.map((s) => s.snapshotId)).toEqual(['kb-kc-a', 'kb-kc-b']);
      const calls = dr.commandCalls(DescribeDBSnapshotsCommand);
      expect(calls.map((c) => c.args[0].input)).toEqual([
        { SnapshotType: 'manual', MaxRecords: 100, Marker: undefined },
        { SnapshotType: 'manual', MaxRecords: 100, Marker: 'page2' },
      ]);
    });

    it('turns throttling into TransientError', async () => {
      primary.on(DescribeDBSnapshotsCommand).rejects(throttled('Throttling'));

      await expect(engine.list('kc', 'primary')).rejects.toBeInstanceOf(TransientError);
    });
  });

  describe('delete', () => {
    it('deletes a snapshot tagged as ours', async () => {
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot()] });
      dr.on(DeleteDBSnapshotCommand).resolves({});

      await engine.delete('kc', 'kb-kc-20261122t0000z', 'dr');

      expect(dr.commandCalls(DeleteDBSnapshotCommand)[0]!.args[0].input).toEqual({
        DBSnapshotIdentifier: 'kb-kc-20261122t0000z',
      });
    });

    it('succeeds when the snapshot is already gone', async () => {
      primary.on(DescribeDBSnapshotsCommand).rejects(sdkError('DBSnapshotNotFoundFault', 404));

      await engine.delete('kc', 'kb-kc-20261122t0000z', 'primary');

      expect(primary.commandCalls(DeleteDBSnapshotCommand)).toHaveLength(0);
    });

    it('never deletes a snapshot that is not tagged as this pipeline’s', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ TagList: [] })] });

      await expect(engine.delete('kc', 'kb-kc-20261122t0000z', 'primary')).rejects.toBeInstanceOf(
        InvalidInputError,
      );
      expect(primary.commandCalls(DeleteDBSnapshotCommand)).toHaveLength(0);
    });

    it('treats a snapshot still being copied as transient', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot()] });
      primary.on(DeleteDBSnapshotCommand).rejects(sdkError('InvalidDBSnapshotStateFault', 400));

      await expect(engine.delete('kc', 'kb-kc-20261122t0000z', 'primary')).rejects.toBeInstanceOf(
        TransientError,
      );
    });
  });

  it('folds RDS statuses into the port’s', () => {
    expect(snapshotStatus('available')).toBe('available');
    expect(snapshotStatus('creating')).toBe('creating');
    expect(snapshotStatus('pending')).toBe('creating');
    expect(snapshotStatus('failed')).toBe('failed');
    expect(snapshotStatus('deleting')).toBe('deleting');
    expect(rdsIdentifier('KB-kc-20261122T0000Z')).toBe('kb-kc-20261122t0000z');
    expect(() => rdsIdentifier('1abc')).toThrow(InvalidInputError);
    expect(() => rdsIdentifier('abc-')).toThrow(InvalidInputError);
  });
});

describe('cross-region copy presigning', () => {
  it('adds a PreSignedUrl signed in the source region to the copy request', async () => {
    // Prepare: a real client whose HTTP handler records the request instead of sending it
    let body = '';
    const drClient = new RDSClient({
      region: 'eu-central-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      requestHandler: {
        handle: async (request: { body?: unknown }) => {
          body = String(request.body ?? '');
          const xml =
            '<CopyDBSnapshotResponse><CopyDBSnapshotResult><DBSnapshot><DBSnapshotIdentifier>kb-kc-x</DBSnapshotIdentifier>' +
            '<Status>pending</Status></DBSnapshot></CopyDBSnapshotResult></CopyDBSnapshotResponse>';
          return { response: { statusCode: 200, headers: {}, body: Readable.from([Buffer.from(xml)]) } };
        },
      },
    });
    const primaryClient = new RDSClient({ region: 'eu-west-1' });
    mockClient(primaryClient)
      .on(DescribeDBSnapshotsCommand)
      .resolves({ DBSnapshots: [snapshot({ Encrypted: false })] });
    const engine = new RdsSnapshotEngine({
      targets,
      pipeline: 'keycloak-backup-dev',
      primaryRegion: 'eu-west-1',
      drRegion: 'eu-central-1',
      drKmsKeyArn: DR_KEY,
      primaryClient,
      drClient,
    });

    // Act
    await engine.copyToDr('kc', 'kb-kc-20261122t0000z');

    // Assess
    const params = new URLSearchParams(body);
    expect(params.get('Action')).toBe('CopyDBSnapshot');
    const presigned = new URL(params.get('PreSignedUrl') ?? 'http://missing');
    expect(presigned.hostname).toBe('rds.eu-west-1.amazonaws.com');
    expect(presigned.searchParams.get('DestinationRegion')).toBe('eu-central-1');
    expect(presigned.searchParams.get('X-Amz-Credential')).toContain('/eu-west-1/rds/aws4_request');
  });
});
