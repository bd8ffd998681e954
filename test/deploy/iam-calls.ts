// Every AWS call each Lambda's code makes, as IAM authorises it (action, the resource ARN it touches, the request
// context its conditions read), for the sample deployment; and the calls no function may make. The IAM simulation
// (iam-simulation.test.ts) evaluates them against the packaged templates. A new function, or a new call in a
// function's code, is one entry here: the test also checks that every SDK command under functions/ is covered.
import {
  claimKey,
  drillKeyChangesKey,
  drillReportKey,
  dumpKey,
  manifestKey,
  runReportKey,
} from '../../functions/core/layout.js';
import { snapshotIdFor } from '../../functions/core/plan.js';
import { recoveryReportKey } from '../../functions/core/recovery.js';
import { SAMPLE } from './package-template.js';
import type { TemplateResolver } from './resolve-template.js';

export type Context = Record<string, string | string[]>;

export interface AwsCall {
  action: string;
  /** The resource ARN, or "*" for a call IAM authorises on no resource (listing). */
  resource: string;
  context?: Context;
  /** Where the code makes it (for a failure message). */
  why: string;
}

/** The names a deployment gives things, read from the resolved templates (what the functions are configured with). */
export interface World {
  account: string;
  region: string;
  drRegion: string;
  primaryBucket: string;
  drBucket: string;
  primaryKey: string;
  drKey: string;
  instanceKey: string;
  alertsKey: string;
  topic: string;
  secret: string;
  instanceId: string;
  replicaInstanceId: string;
  pipeline: string;
  subnetGroup: string;
  target: string;
  backupId: string;
  drillId: string;
  recoveryName: string;
}

export function sampleWorld(primary: TemplateResolver, dr: TemplateResolver): World {
  const env = primary.resolve(
    primary.template.Resources.PlanBackupLambdaFunction.Properties.Environment.Variables,
  );
  const [target] = JSON.parse(env.KB_TARGETS) as {
    name: string;
    instanceId: string;
    replicaInstanceId: string;
    secretArn: string;
  }[];
  return {
    account: SAMPLE.account,
    region: env.KB_PRIMARY_REGION,
    drRegion: env.KB_DR_REGION,
    primaryBucket: env.KB_PRIMARY_BUCKET,
    drBucket: env.KB_DR_BUCKET,
    primaryKey: env.KB_KMS_KEY_ID,
    drKey: env.KB_DR_KMS_KEY_ID,
    instanceKey: SAMPLE.params.instanceKmsKeyArn,
    alertsKey: primary.getAtt('AlertsKey', 'Arn'),
    topic: env.KB_ALERT_TOPIC_ARN,
    secret: target!.secretArn,
    instanceId: target!.instanceId,
    replicaInstanceId: target!.replicaInstanceId,
    pipeline: env.KB_PIPELINE_NAME,
    subnetGroup: env.KB_DRILL_SUBNET_GROUP,
    target: target!.name,
    backupId: '20261206T0000Z',
    drillId: `drill-${target!.name}-20261206t030000`,
    recoveryName: 'recovered-before-incident',
    // The DR stack's own view of its bucket and key must be what the primary stack derives.
    ...checkSame('DR bucket', env.KB_DR_BUCKET, dr.ref('BackupBucket')),
    ...checkSame('DR key', env.KB_DR_KMS_KEY_ID, dr.getAtt('BackupKey', 'Arn')),
  };
}

function checkSame(what: string, primaryView: string, drView: string): Record<string, never> {
  if (primaryView !== drView) {
    throw new Error(`${what}: the primary stack uses ${primaryView}, the DR stack creates ${drView}`);
  }
  return {};
}

const TLS: Context = { 'aws:SecureTransport': 'true' };

/** The calls that make up each step of the code, in the sample world. */
export function callBuilders(w: World) {
  const bucketKey = (bucket: string) => (bucket === w.drBucket ? w.drKey : w.primaryKey);
  const bucketRegion = (bucket: string) => (bucket === w.drBucket ? w.drRegion : w.region);
  const rds = (region: string, resource: string) => `arn:aws:rds:${region}:${w.account}:${resource}`;
  const snapshotId = snapshotIdFor(w.target, w.backupId);
  const sseContext = (bucket: string): Context => ({
    ...TLS,
    'kms:ViaService': `s3.${bucketRegion(bucket)}.amazonaws.com`,
    'kms:CallerAccount': w.account,
    // With an S3 bucket key, S3 asks KMS under the bucket's ARN.
    'kms:EncryptionContext:aws:s3:arn': `arn:aws:s3:::${bucket}`,
  });
  const b = {
    list: (bucket: string, why: string): AwsCall[] => [
      {
        action: 's3:ListBucket',
        resource: `arn:aws:s3:::${bucket}`,
        context: { ...TLS, 's3:prefix': `${w.target}/` },
        why,
      },
    ],
    /** GetObject of an SSE-KMS object: S3 decrypts it with the caller's kms:Decrypt. */
    get: (bucket: string, key: string, why: string): AwsCall[] => [
      { action: 's3:GetObject', resource: `arn:aws:s3:::${bucket}/${key}`, context: TLS, why },
      {
        action: 'kms:Decrypt',
        resource: bucketKey(bucket),
        context: sseContext(bucket),
        why: `${why} (SSE-KMS)`,
      },
    ],
    /**
     * A put under the bucket's key with SSE-KMS headers; with Object Lock, its retain-until. A multipart upload also
     * needs kms:Decrypt (S3 decrypts the upload's data key for each part) and may be aborted.
     */
    put: (
      bucket: string,
      key: string,
      why: string,
      { retain = true, multipart = false }: { retain?: boolean; multipart?: boolean } = {},
    ): AwsCall[] => {
      const object = `arn:aws:s3:::${bucket}/${key}`;
      const calls: AwsCall[] = [
        {
          action: 's3:PutObject',
          resource: object,
          context: {
            ...TLS,
            's3:x-amz-server-side-encryption': 'aws:kms',
            's3:x-amz-server-side-encryption-aws-kms-key-id': bucketKey(bucket),
          },
          why,
        },
        {
          action: 'kms:GenerateDataKey',
          resource: bucketKey(bucket),
          context: sseContext(bucket),
          why: `${why} (SSE-KMS)`,
        },
      ];
      if (retain) {
        calls.push({
          action: 's3:PutObjectRetention',
          resource: object,
          context: { ...TLS, 's3:object-lock-mode': 'GOVERNANCE' },
          why: `${why} (Object Lock retain-until)`,
        });
      }
      if (multipart) {
        calls.push(
          {
            action: 's3:AbortMultipartUpload',
            resource: object,
            context: TLS,
            why: `${why} (aborted on failure)`,
          },
          {
            action: 'kms:Decrypt',
            resource: bucketKey(bucket),
            context: sseContext(bucket),
            why: `${why} (multipart SSE-KMS)`,
          },
        );
      }
      return calls;
    },
    delete: (bucket: string, key: string, why: string): AwsCall[] => [
      { action: 's3:DeleteObject', resource: `arn:aws:s3:::${bucket}/${key}`, context: TLS, why },
    ],
  };
  const kms = (action: string, key: string, why: string, context: Context = {}): AwsCall => ({
    action,
    resource: key,
    context: { ...TLS, ...context },
    why,
  });
  /** What RDS does with the caller's rights when it restores or copies under a customer-managed key. */
  const rdsUsesKey = (key: string, region: string, why: string): AwsCall[] => [
    kms('kms:DescribeKey', key, why, { 'kms:ViaService': `rds.${region}.amazonaws.com` }),
    kms('kms:CreateGrant', key, why, {
      'kms:ViaService': `rds.${region}.amazonaws.com`,
      'kms:GrantIsForAWSResource': 'true',
    }),
  ];
  return {
    ...b,
    kms,
    rdsUsesKey,
    rds,
    snapshotId,
    manifest: manifestKey(w.target, w.backupId),
    dump: dumpKey(w.target, w.backupId),
  };
}

/** The calls of each function, by serverless function key. */
export function functionCalls(w: World): Record<string, AwsCall[]> {
  const c = callBuilders(w);
  const { manifest, dump, snapshotId } = c;
  const drill = c.rds(w.region, `db:${w.drillId}`);
  const source = c.rds(w.region, `db:${w.instanceId}`);
  const secret: AwsCall = {
    action: 'secretsmanager:GetSecretValue',
    resource: w.secret,
    context: TLS,
    why: 'SecretsDatabaseLocator reads the target credentials',
  };
  const describeDrill: AwsCall = {
    action: 'rds:DescribeDBInstances',
    resource: drill,
    why: 'RdsPointInTimeEngine.describe of the drill instance',
  };
  const ourDrill: Context = { 'rds:db-tag/drill': 'true', 'rds:db-tag/pipeline': w.pipeline };
  const publish: AwsCall[] = [
    { action: 'sns:Publish', resource: w.topic, context: TLS, why: 'SnsNotifier.publish' },
    c.kms('kms:GenerateDataKey', w.alertsKey, 'publishing to the encrypted topic', {
      'kms:ViaService': `sns.${w.region}.amazonaws.com`,
    }),
    c.kms('kms:Decrypt', w.alertsKey, 'publishing to the encrypted topic', {
      'kms:ViaService': `sns.${w.region}.amazonaws.com`,
    }),
  ];
  const envelopeEncrypt = [
    c.kms('kms:GenerateDataKey', w.primaryKey, 'envelope: data key from the primary key'),
    c.kms('kms:Encrypt', w.drKey, 'envelope: data key wrapped under the DR key too'),
  ];
  const envelopeDecrypt = [
    c.kms('kms:Decrypt', w.primaryKey, 'envelope: data key unwrapped in the primary region'),
    c.kms('kms:Decrypt', w.drKey, 'envelope: the DR key when the primary region does not answer'),
  ];
  // Manifests are sealed: reading one unwraps its MAC key (either region's key), writing one wraps a fresh one.
  const manifestOpen = envelopeDecrypt.map((call) => ({
    ...call,
    why: `manifest authentication: ${call.why}`,
  }));
  const manifestSeal = envelopeEncrypt.map((call) => ({ ...call, why: `manifest sealing: ${call.why}` }));
  const primarySnapshot = c.rds(w.region, `snapshot:${snapshotId}`);
  const recovery = c.rds(w.region, `db:${w.recoveryName}`);
  const recoveryTags: Context = {
    'aws:RequestTag/recovery': 'true',
    'aws:RequestTag/pipeline': w.pipeline,
    'aws:TagKeys': ['pipeline', 'recovery', 'target'],
  };
  const drSnapshot = c.rds(w.drRegion, `snapshot:${snapshotId}`);
  /** RestoreDBInstanceToPointInTime from the source into `target`, and every resource it names. */
  const pointInTimeRestore = (target: string, context: Context, why: string): AwsCall[] =>
    [
      source,
      target,
      c.rds(w.region, `subgrp:${w.subnetGroup}`),
      c.rds(w.region, 'og:default:postgres-16'),
      c.rds(w.region, 'pg:default.postgres16'),
    ].map((resource) => ({ action: 'rds:RestoreDBInstanceToPointInTime', resource, context, why }));

  return {
    planBackup: [
      c.kms('kms:DescribeKey', w.primaryKey, 'KmsKeys.checkKeysEnabled'),
      c.kms('kms:DescribeKey', w.drKey, 'KmsKeys.checkKeysEnabled'),
      ...envelopeEncrypt,
      ...envelopeDecrypt,
      ...c.list(
        w.primaryBucket,
        "a manual run's id: the ids stored that day; the key check: the target's manifests",
      ),
      ...c.get(w.primaryBucket, manifest, "assertKeyOfBackups: the newest manifest's key fingerprint"),
      secret,
    ],
    dumpDatabase: [
      ...c.get(w.primaryBucket, manifest, 'dumpStep: an existing manifest (retried run)'),
      ...c.list(w.primaryBucket, 'readCatalog: earlier backups for the size check'),
      ...c.put(w.primaryBucket, claimKey(w.target, w.backupId), 'claimBackup: the claim, create-only'),
      ...c.get(w.primaryBucket, claimKey(w.target, w.backupId), 'claimBackup: who holds a taken claim'),
      ...c.delete(
        w.primaryBucket,
        claimKey(w.target, w.backupId),
        'releaseClaim: a failed dump gives the id up',
      ),
      ...c.put(w.primaryBucket, dump, 'the dump upload', { multipart: true }),
      ...c.put(w.primaryBucket, manifest, 'the manifest, written last'),
      ...envelopeEncrypt,
      ...manifestOpen,
      secret,
      {
        action: 'rds:DescribeDBInstances',
        resource: c.rds(w.region, `db:${w.replicaInstanceId}`),
        why: 'RdsReplicaMonitor: is the read replica available and replicating?',
      },
      ...publish.map((call) => ({ ...call, why: `a dump under half the previous size: ${call.why}` })),
      {
        action: 'cloudwatch:GetMetricData',
        resource: '*',
        why: "RdsReplicaMonitor: the replica's ReplicaLag (GetMetricData has no resource-level permissions)",
      },
    ],
    verifyBackup: [
      // No step but the dump reads a claim; primaryRead grants every object of a backup, a claim among them.
      ...c.get(w.primaryBucket, claimKey(w.target, w.backupId), 'within primaryRead (not called)'),
      ...c.list(w.primaryBucket, 'S3 answers a missing manifest with 404 only to a role that may list'),
      ...c.get(w.primaryBucket, manifest, 'readManifest'),
      ...c.get(w.primaryBucket, dump, 'the stored dump, re-read'),
      ...c.put(w.primaryBucket, manifest, 'the manifest with its verification'),
      ...envelopeDecrypt,
      ...manifestSeal,
      {
        action: 'secretsmanager:GetSecretValue',
        resource: SAMPLE.params.scratchSecretArn,
        context: TLS,
        why: 'full verification: the scratch server from its secret',
      },
    ],
    copyBackupToDr: [
      // No step but the dump reads a claim; primaryRead grants every object of a backup, a claim among them.
      ...c.get(w.primaryBucket, claimKey(w.target, w.backupId), 'within primaryRead (not called)'),
      ...c.list(w.primaryBucket, 'S3 answers a missing manifest with 404 only to a role that may list'),
      ...c.get(w.primaryBucket, manifest, 'readManifest'),
      ...c.get(w.primaryBucket, dump, 'the dump, streamed to the DR bucket'),
      ...c.put(w.drBucket, dump, 'the DR copy of the dump', { multipart: true }),
      ...c.put(w.drBucket, manifest, 'the DR copy of the manifest'),
      ...c.put(w.primaryBucket, manifest, 'the manifest, recording the copy'),
      ...manifestOpen,
      ...manifestSeal,
    ],
    createSnapshot: [
      { action: 'rds:CreateDBSnapshot', resource: source, why: 'RdsSnapshotEngine.create: the instance' },
      {
        action: 'rds:CreateDBSnapshot',
        resource: primarySnapshot,
        why: 'RdsSnapshotEngine.create: the snapshot',
      },
      {
        action: 'rds:AddTagsToResource',
        resource: primarySnapshot,
        context: { 'aws:TagKeys': ['pipeline', 'target', 'backupId', 'retainUntil'] },
        why: 'CreateDBSnapshot with Tags',
      },
      {
        action: 'rds:DescribeDBSnapshots',
        resource: primarySnapshot,
        why: 'create: the snapshot already exists',
      },
      { action: 'rds:DescribeDBInstances', resource: source, why: 'create: is the instance backing up?' },
    ],
    checkSnapshot: [
      { action: 'rds:DescribeDBSnapshots', resource: primarySnapshot, why: 'describe (primary)' },
      { action: 'rds:DescribeDBSnapshots', resource: drSnapshot, why: 'describe (DR copy)' },
    ],
    copySnapshotToDr: [
      { action: 'rds:DescribeDBSnapshots', resource: primarySnapshot, why: 'copyToDr: the source' },
      { action: 'rds:DescribeDBSnapshots', resource: drSnapshot, why: 'copyToDr: the copy already exists' },
      c.kms('kms:DescribeKey', w.instanceKey, 'copyToDr: is the source key AWS-managed?'),
      { action: 'rds:CopyDBSnapshot', resource: primarySnapshot, why: 'CopyDBSnapshot: the source' },
      { action: 'rds:CopyDBSnapshot', resource: drSnapshot, why: 'CopyDBSnapshot: the copy' },
      { action: 'rds:AddTagsToResource', resource: drSnapshot, why: 'CopyDBSnapshot with CopyTags' },
      ...c.rdsUsesKey(w.drKey, w.drRegion, 'CopyDBSnapshot under the DR key'),
      ...c.rdsUsesKey(w.instanceKey, w.region, 'CopyDBSnapshot reads the source under the instance key'),
    ],
    applyRetention: [
      ...c.delete(
        w.primaryBucket,
        claimKey(w.target, w.backupId),
        'an expired or incomplete backup goes with its claim',
      ),
      ...manifestOpen,
      ...[w.primaryBucket, w.drBucket].flatMap((bucket) => [
        ...c.list(bucket, 'expireRegion: the catalogue'),
        ...c.get(bucket, manifest, 'expireRegion: manifests'),
        ...c.delete(bucket, dump, 'expireRegion: expired dumps'),
        ...c.delete(bucket, manifest, 'expireRegion: expired manifests'),
      ]),
      ...[w.region, w.drRegion].flatMap((region): AwsCall[] => [
        { action: 'rds:DescribeDBSnapshots', resource: '*', why: 'RdsSnapshotEngine.list (no identifier)' },
        {
          action: 'rds:DescribeDBSnapshots',
          resource: c.rds(region, `snapshot:${snapshotId}`),
          why: 'delete: the snapshot and its tags',
        },
        {
          action: 'rds:DeleteDBSnapshot',
          resource: c.rds(region, `snapshot:${snapshotId}`),
          context: { 'rds:snapshot-tag/pipeline': w.pipeline },
          why: 'delete: an expired snapshot of this pipeline',
        },
      ]),
      ...publish.map((call) => ({ ...call, why: `a damaged manifest's alert: ${call.why}` })),
    ],
    reportBackup: [
      ...manifestOpen,
      ...c.list(w.primaryBucket, "readRunManifests: the run's manifests"),
      ...c.get(w.primaryBucket, manifest, "readRunManifests: the run's manifests"),
      ...c.put(w.primaryBucket, runReportKey(w.target, w.backupId), 'the run report of a failed target', {
        retain: false,
      }),
    ],
    notifyFailure: publish,
    validateDrill: [
      { action: 'rds:DescribeDBInstances', resource: source, why: 'restorableWindow: the source' },
      { action: 'rds:DescribeDBInstanceAutomatedBackups', resource: source, why: 'restorableWindow' },
    ],
    startDrillRestore: [
      ...pointInTimeRestore(drill, { 'rds:PubliclyAccessible': 'false' }, 'RdsPointInTimeEngine.restore'),
      {
        action: 'rds:AddTagsToResource',
        resource: drill,
        context: { 'aws:TagKeys': ['pipeline', 'drill', 'target', 'expiresAt'] },
        why: 'restore with Tags',
      },
      describeDrill,
      ...c.rdsUsesKey(w.instanceKey, w.region, 'the restored instance is encrypted under the instance key'),
    ],
    checkDrillRestore: [describeDrill, secret],
    verifyDrill: [
      describeDrill,
      secret,
      ...c.list(w.primaryBucket, 'findNearestManifest'),
      ...c.get(w.primaryBucket, manifest, 'findNearestManifest'),
      ...manifestOpen,
      ...c.put(w.primaryBucket, drillKeyChangesKey(w.target, w.drillId), 'the realm-key changes', {
        retain: false,
      }),
      ...publish,
    ],
    verifyDrillDump: [
      describeDrill,
      secret,
      ...c.list(w.primaryBucket, 'findNearestManifest (primary)'),
      ...c.get(w.primaryBucket, manifest, 'findNearestManifest (primary)'),
      ...c.list(w.drBucket, 'findNearestManifest (DR)'),
      ...c.get(w.drBucket, manifest, 'findNearestManifest (DR)'),
      ...c.get(w.drBucket, dump, 'the DR copy of the dump'),
      c.kms('kms:Decrypt', w.drKey, 'envelope: the DR key alone'),
    ],
    teardownDrill: [
      describeDrill,
      {
        action: 'rds:DeleteDBInstance',
        resource: drill,
        context: ourDrill,
        why: 'teardown of a tagged drill',
      },
    ],
    recordDrill: [
      ...c.list(w.primaryBucket, 'S3 answers missing key changes with 404 only to a role that may list'),
      ...c.get(
        w.primaryBucket,
        drillKeyChangesKey(w.target, w.drillId),
        "the verification's realm-key changes",
      ),
      ...c.put(w.primaryBucket, drillReportKey(w.target, w.drillId), 'the drill report', { retain: false }),
    ],
    startRecovery: [
      { action: 'rds:DescribeDBInstances', resource: source, why: 'restorableWindow: the source' },
      { action: 'rds:DescribeDBInstanceAutomatedBackups', resource: source, why: 'restorableWindow' },
      ...pointInTimeRestore(recovery, recoveryTags, 'RdsPointInTimeEngine.restore (purpose recovery)'),
      {
        action: 'rds:AddTagsToResource',
        resource: recovery,
        context: recoveryTags,
        why: 'restore with Tags',
      },
      { action: 'rds:DescribeDBInstances', resource: recovery, why: 'restore: the instance already exists' },
      ...c.rdsUsesKey(w.instanceKey, w.region, 'the recovered instance is encrypted under the instance key'),
    ],
    recordRecovery: [
      ...c.put(w.primaryBucket, recoveryReportKey(w.target, w.recoveryName), 'the recovery report', {
        retain: false,
      }),
      ...publish,
    ],
    dropRecovery: [
      { action: 'rds:DescribeDBInstances', resource: recovery, why: 'describe the recovery' },
      { ...secret, why: "describe: an available instance's connection URL" },
      {
        action: 'rds:DeleteDBInstance',
        resource: recovery,
        context: { 'rds:db-tag/recovery': 'true', 'rds:db-tag/pipeline': w.pipeline },
        why: 'teardown of a kept recovery',
      },
    ],
    sweepDrills: [
      { action: 'rds:DescribeDBInstances', resource: '*', why: 'listDrills (no identifier)' },
      describeDrill,
      { action: 'rds:DeleteDBInstance', resource: drill, context: ourDrill, why: 'sweep of a tagged drill' },
      ...publish,
    ],
  };
}

/** Calls no function may make: each would break a protection of the pipeline or the database it backs up. */
export function forbiddenCalls(w: World): AwsCall[] {
  const c = callBuilders(w);
  const production = c.rds(w.region, `db:${w.instanceId}`);
  const drill = c.rds(w.region, `db:${w.drillId}`);
  const objects = [w.primaryBucket, w.drBucket].map((bucket) => `arn:aws:s3:::${bucket}/${c.dump}`);
  return [
    {
      action: 'rds:DeleteDBInstance',
      resource: production,
      context: { 'rds:db-tag/pipeline': w.pipeline },
      why: 'the production instance is no drill',
    },
    {
      action: 'rds:DeleteDBInstance',
      resource: drill,
      context: { 'rds:db-tag/drill': 'true', 'rds:db-tag/pipeline': 'another-pipeline' },
      why: "another pipeline's drill",
    },
    {
      action: 'rds:DeleteDBInstanceAutomatedBackup',
      resource: c.rds(w.region, 'auto-backup:ab-production1234567890abcdefghij'),
      why: 'retained automated backups of any instance',
    },
    {
      action: 'rds:DeleteDBSnapshot',
      resource: c.rds(w.region, `snapshot:${c.snapshotId}`),
      context: { 'rds:snapshot-tag/pipeline': 'another-pipeline' },
      why: "another pipeline's snapshot",
    },
    {
      action: 'rds:DeleteDBSnapshot',
      resource: c.rds(w.region, 'snapshot:keycloak-before-upgrade'),
      why: 'an operator snapshot without the pipeline tag',
    },
    {
      action: 'rds:RestoreDBInstanceToPointInTime',
      resource: c.rds(w.region, 'db:keycloak-copy'),
      why: 'a restore under a name that is no drill',
    },
    { action: 'rds:ModifyDBInstance', resource: production, why: 'changing the production instance' },
    { action: 'rds:RebootDBInstance', resource: production, why: 'rebooting the production instance' },
    ...objects.flatMap((resource): AwsCall[] => [
      { action: 's3:BypassGovernanceRetention', resource, why: 'bypassing Object Lock' },
      { action: 's3:DeleteObjectVersion', resource, why: 'deleting a locked version' },
      { action: 's3:PutObjectLegalHold', resource, why: 'legal holds are the operator’s' },
    ]),
    ...[w.primaryBucket, w.drBucket].flatMap((bucket): AwsCall[] => [
      { action: 's3:PutBucketPolicy', resource: `arn:aws:s3:::${bucket}`, why: 'changing the bucket policy' },
      { action: 's3:DeleteBucket', resource: `arn:aws:s3:::${bucket}`, why: 'deleting the bucket' },
      {
        action: 's3:PutBucketObjectLockConfiguration',
        resource: `arn:aws:s3:::${bucket}`,
        why: 'weakening Object Lock',
      },
    ]),
    ...[w.primaryKey, w.drKey, w.instanceKey].flatMap((key): AwsCall[] => [
      c.kms('kms:ScheduleKeyDeletion', key, 'deleting a key'),
      c.kms('kms:DisableKey', key, 'disabling a key'),
      c.kms('kms:PutKeyPolicy', key, 'changing a key policy'),
      c.kms('kms:CreateGrant', key, 'a grant for anything but an AWS service', {
        'kms:GrantIsForAWSResource': 'false',
      }),
      c.kms('kms:ReEncryptFrom', key, 're-encrypting'),
    ]),
    { action: 'secretsmanager:PutSecretValue', resource: w.secret, why: 'changing the database password' },
    {
      action: 'sns:Publish',
      resource: `arn:aws:sns:${w.region}:${w.account}:someone-elses-topic`,
      why: 'publishing elsewhere',
    },
  ];
}

/** Calls that particular functions must not make although another function may (issue 14's over-grants). */
export function notTheirJob(w: World): Record<string, AwsCall[]> {
  const c = callBuilders(w);
  const encryptUnderDr = c.kms('kms:Encrypt', w.drKey, 'encrypting under the DR key');
  return {
    recordDrill: [encryptUnderDr],
    startDrillRestore: [
      ...c.rdsUsesKey(w.drKey, w.region, 'the DR key is no part of a restore in the primary region'),
      c.kms('kms:Decrypt', w.drKey, 'the DR key'),
    ],
    teardownDrill: [
      {
        action: 'rds:DeleteDBInstanceAutomatedBackup',
        resource: c.rds(w.region, 'auto-backup:ab-drill1234567890abcdefghijklmn'),
        why: 'drills have no automated backups',
      },
    ],
  };
}
