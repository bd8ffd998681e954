// One least-privilege IAM role per Lambda, built from what each step does. No action is "*" and no resource is "*"
// except where AWS offers nothing narrower: Describe calls, and the network interfaces of a Lambda in a VPC.
'use strict';

const { arn, join, ref } = require('./cfn.cjs');
const { bucketName } = require('./storage.cjs');

const s3Arn = (bucket, suffix = '') => join(['arn:', ref('AWS::Partition'), ':s3:::', bucket, suffix]);

/**
 * Manifests are sealed (an HMAC under a fresh key that the envelope keyring wraps under both KMS keys): a function
 * that reads a manifest needs envelopeDecrypt, one that writes one envelopeEncrypt, whatever else it does.
 *
 * What each function may do, by permission set (defined below). Keys are the serverless function keys. Each set
 * matches what the function's code calls (test/deploy/iam-calls.ts lists the calls; the IAM simulation in
 * test/deploy/iam-simulation.test.ts evaluates them against the packaged template, and denies everything else).
 */
const FUNCTION_PERMISSIONS = {
  // Lists the day's backup ids (a manual run's id) and reads the newest manifest (the key it was written under).
  planBackup: ['keysDescribe', 'envelopeEncrypt', 'envelopeDecrypt', 'secretRead', 'primaryManifestsRead'],
  // Asks RDS whether the read replica is available and replicating before it dumps from it; warns the operator
  // through the alert topic of a dump under half the previous backup's size.
  dumpDatabase: [
    'envelopeEncrypt',
    'envelopeDecrypt',
    'secretRead',
    'primaryManifestsRead',
    'primaryWrite',
    'claimRelease',
    'replicaDescribe',
    'alertPublish',
    'replicaLagRead',
  ],
  verifyBackup: [
    'envelopeEncrypt',
    'envelopeDecrypt',
    'primaryRead',
    'primaryManifestWrite',
    'scratchSecretRead',
  ],
  // Copies the dump's ciphertext as it is; the envelope keys only open and seal the manifest.
  copyBackupToDr: ['envelopeEncrypt', 'envelopeDecrypt', 'primaryRead', 'primaryManifestWrite', 'drWrite'],
  createSnapshot: ['sourceDescribe', 'snapshotCreate'],
  checkSnapshot: ['snapshotsDescribe'],
  copySnapshotToDr: ['snapshotsDescribe', 'snapshotCopy'],
  applyRetention: [
    'envelopeDecrypt',
    'primaryManifestsRead',
    'drManifestsRead',
    'primaryDelete',
    'drDelete',
    'snapshotsDescribe',
    'snapshotDelete',
    // A manifest it cannot read or authenticate is left in place and alerted, naming the object.
    'alertPublish',
  ],
  // Reads the run's manifests for its metrics; keeps a run report beside the backups of a target that failed.
  reportBackup: ['envelopeDecrypt', 'primaryManifestsRead', 'runReportWrite'],
  notifyFailure: ['alertPublish'],
  validateDrill: ['instancesDescribe', 'automatedBackupsDescribe'],
  startDrillRestore: ['instancesDescribe', 'drillRestore'],
  checkDrillRestore: ['instancesDescribe', 'secretRead'],
  // Writes the realm-key changes beside the drill report and alerts when a restore would reintroduce a key.
  verifyDrill: [
    'instancesDescribe',
    'secretRead',
    'envelopeDecrypt',
    'primaryManifestsRead',
    'drillKeyChangesWrite',
    'alertPublish',
  ],
  // The drill's restore of the nearest dump from the DR bucket, decrypted with the DR key alone.
  verifyDrillDump: ['instancesDescribe', 'secretRead', 'drKeyDecrypt', 'primaryManifestsRead', 'drRead'],
  teardownDrill: ['instancesDescribe', 'drillDelete'],
  // Folds the verification's realm-key changes (beside the report) into the drill report.
  recordDrill: ['drillReportsRead', 'drillReportWrite'],
  sweepDrills: ['instancesDescribe', 'drillDelete', 'alertPublish'],
  // aws-asl: the recover machine (keycloak-backup pitr), a kept point-in-time recovery that no sweep removes.
  startRecovery: ['instancesDescribe', 'automatedBackupsDescribe', 'recoveryRestore'],
  recordRecovery: ['recoveryReportWrite', 'alertPublish'],
  // describe() of an available instance builds its connection URL from the target's secret.
  dropRecovery: ['instancesDescribe', 'secretRead', 'recoveryDelete'],
};

function permissionSets(p) {
  const primaryBucket = ref('BackupBucket');
  const drBucket = bucketName(p.storageName, p.stage, p.drRegion);
  const primaryKey = { 'Fn::GetAtt': ['BackupKey', 'Arn'] };
  const keys = [primaryKey, p.drKmsKeyArn];
  const snapshotIn = (region) => arn('rds', 'snapshot:kb-*', { region });
  /** The bucket's SSE-KMS key, used only through S3 in the bucket's region. */
  const throughS3 = (region) => ({
    StringEquals: { 'kms:ViaService': join(['s3.', region, '.amazonaws.com']) },
  });
  // The objects of backups, as functions/core/layout.ts names them: <target>/<yyyy>/<mm>/<dd>/<backupId>/<file>
  // (drill reports, <target>/drills/<drillId>/..., are not among them).
  const backups = (bucket) => s3Arn(bucket, '/*/????/??/??/*');
  const manifests = (bucket) => s3Arn(bucket, '/*/????/??/??/*/manifest.json');
  // ListBucket also makes S3 answer a missing object with 404 (not 403), which reading a manifest relies on.
  const read = (bucket, objects, key, region) => [
    { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: s3Arn(bucket) },
    { Effect: 'Allow', Action: ['s3:GetObject'], Resource: objects },
    // S3 decrypts an SSE-KMS object with the caller's rights.
    { Effect: 'Allow', Action: ['kms:Decrypt'], Resource: key, Condition: throughS3(region) },
  ];
  const write = (objects, key, region) => [
    {
      Effect: 'Allow',
      // PutObjectRetention: objects are written with their Object Lock retain-until.
      Action: ['s3:PutObject', 's3:PutObjectRetention', 's3:AbortMultipartUpload'],
      Resource: objects,
    },
    // SSE-KMS: a data key for each object; a multipart upload also decrypts it for every part.
    {
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: key,
      Condition: throughS3(region),
    },
  ];
  const del = (bucket) => [{ Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: backups(bucket) }];
  const region = ref('AWS::Region');
  // One file of each drill's folder (functions/core/layout.ts): <target>/drills/<drillId>/<file>.
  const drillFileWrite = (file) => [
    { Effect: 'Allow', Action: ['s3:PutObject'], Resource: s3Arn(primaryBucket, `/*/drills/*/${file}`) },
    { Effect: 'Allow', Action: ['kms:GenerateDataKey'], Resource: primaryKey, Condition: throughS3(region) },
  ];
  const drillInstances = arn('rds', 'db:drill-*');
  const ourDrill = {
    StringEquals: { 'rds:db-tag/drill': 'true', 'rds:db-tag/pipeline': p.pipeline },
  };
  /**
   * RDS encrypts a copy or a restore under a customer-managed key through a grant, which it creates with the
   * caller's rights, after describing the key. kms:GrantIsForAWSResource exists only on the grant actions: a
   * statement that put DescribeKey under it would never allow DescribeKey.
   */
  const rdsUsesKeys = (keyArns) => [
    { Effect: 'Allow', Action: ['kms:DescribeKey'], Resource: keyArns },
    {
      Effect: 'Allow',
      Action: ['kms:CreateGrant'],
      Resource: keyArns,
      Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    },
  ];
  return {
    keysDescribe: [{ Effect: 'Allow', Action: ['kms:DescribeKey'], Resource: keys }],
    // The envelope: each data key generated under the primary key and wrapped under the DR key as well.
    envelopeEncrypt: [
      { Effect: 'Allow', Action: ['kms:GenerateDataKey'], Resource: primaryKey },
      { Effect: 'Allow', Action: ['kms:Encrypt'], Resource: p.drKmsKeyArn },
    ],
    // Either key unwraps a data key: the DR key when the primary region does not answer.
    envelopeDecrypt: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: keys }],
    // The DR key alone (the drill proves the DR region decrypts its copy without the primary key).
    drKeyDecrypt: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: p.drKmsKeyArn }],
    secretRead: [{ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: p.secretArn }],
    // Full verification's scratch server, from its secret (never a password in the environment).
    scratchSecretRead: p.scratchSecretArn
      ? [{ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: p.scratchSecretArn }]
      : [],
    primaryRead: read(primaryBucket, backups(primaryBucket), primaryKey, region),
    primaryManifestsRead: read(primaryBucket, manifests(primaryBucket), primaryKey, region),
    drManifestsRead: read(drBucket, manifests(drBucket), p.drKmsKeyArn, p.drRegion),
    drRead: read(drBucket, backups(drBucket), p.drKmsKeyArn, p.drRegion),
    primaryWrite: write(backups(primaryBucket), primaryKey, region),
    // A manifest is one small PutObject: no multipart upload, so no abort and no kms:Decrypt.
    primaryManifestWrite: [
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:PutObjectRetention'],
        Resource: manifests(primaryBucket),
      },
      {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey'],
        Resource: primaryKey,
        Condition: throughS3(region),
      },
    ],
    drWrite: write(backups(drBucket), p.drKmsKeyArn, p.drRegion),
    primaryDelete: del(primaryBucket),
    // The dump's claim of its backup id (core/backup-claim.ts): who holds a taken one; a failed dump gives it up.
    claimRelease: [
      {
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:DeleteObject'],
        Resource: s3Arn(primaryBucket, '/*/????/??/??/*/claim.json'),
      },
    ],
    // The replica's ReplicaLag before a dump. cloudwatch:GetMetricData has no resource-level permissions (nor
    // condition keys that name a metric): "*" is the only resource IAM accepts for it; it reads metrics, no data.
    replicaLagRead: [{ Effect: 'Allow', Action: ['cloudwatch:GetMetricData'], Resource: '*' }],
    drDelete: del(drBucket),
    // Drill reports only: <target>/drills/<drillId>/drill-report.json, never a dump or a manifest.
    drillReportsRead: read(primaryBucket, s3Arn(primaryBucket, '/*/drills/*'), primaryKey, region),
    // Run reports only: <target>/runs/<backupId>/run-report.json.
    runReportWrite: [
      { Effect: 'Allow', Action: ['s3:PutObject'], Resource: s3Arn(primaryBucket, '/*/runs/*') },
      {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey'],
        Resource: primaryKey,
        Condition: throughS3(region),
      },
    ],
    drillReportWrite: drillFileWrite('drill-report.json'),
    drillKeyChangesWrite: drillFileWrite('key-changes.json'),
    snapshotsDescribe: [
      // DescribeDBSnapshots without an identifier (listing) is only authorised on "*".
      { Effect: 'Allow', Action: ['rds:DescribeDBSnapshots'], Resource: '*' },
    ],
    // The dump's freshness check: the read replica's status and its read replication.
    replicaDescribe: [
      {
        Effect: 'Allow',
        Action: ['rds:DescribeDBInstances'],
        Resource: arn('rds', join(['db:', p.replicaInstanceId])),
      },
    ],
    // The snapshot step waits while the instance is backing up (CreateDBSnapshot refuses a busy instance).
    sourceDescribe: [
      {
        Effect: 'Allow',
        Action: ['rds:DescribeDBInstances'],
        Resource: arn('rds', join(['db:', p.instanceId])),
      },
    ],
    snapshotCreate: [
      {
        Effect: 'Allow',
        Action: ['rds:CreateDBSnapshot'],
        Resource: [arn('rds', join(['db:', p.instanceId])), snapshotIn(region)],
      },
      { Effect: 'Allow', Action: ['rds:AddTagsToResource'], Resource: snapshotIn(region) },
      { Effect: 'Allow', Action: ['rds:DescribeDBSnapshots'], Resource: snapshotIn(region) },
    ],
    snapshotCopy: [
      {
        Effect: 'Allow',
        Action: ['rds:CopyDBSnapshot'],
        Resource: [snapshotIn(region), snapshotIn(p.drRegion)],
      },
      { Effect: 'Allow', Action: ['rds:AddTagsToResource'], Resource: snapshotIn(p.drRegion) },
      // The copy is encrypted under the DR key; the source is read under the instance's key. DescribeKey on the
      // instance key also tells an AWS-managed source key (which cannot be copied across regions).
      ...rdsUsesKeys([p.instanceKmsKeyArn, p.drKmsKeyArn]),
    ],
    snapshotDelete: [
      {
        Effect: 'Allow',
        Action: ['rds:DeleteDBSnapshot'],
        Resource: [snapshotIn(region), snapshotIn(p.drRegion)],
        Condition: { StringEquals: { 'rds:snapshot-tag/pipeline': p.pipeline } },
      },
    ],
    instancesDescribe: [
      // DescribeDBInstances without an identifier (the sweeper's listing) is only authorised on "*".
      { Effect: 'Allow', Action: ['rds:DescribeDBInstances'], Resource: '*' },
    ],
    automatedBackupsDescribe: [
      { Effect: 'Allow', Action: ['rds:DescribeDBInstanceAutomatedBackups'], Resource: '*' },
    ],
    drillRestore: [
      {
        Effect: 'Allow',
        Action: ['rds:RestoreDBInstanceToPointInTime'],
        Resource: [
          arn('rds', join(['db:', p.instanceId])),
          drillInstances,
          arn('rds', join(['subgrp:', ref('DrillSubnetGroup')])),
          arn('rds', 'og:*'),
          arn('rds', 'pg:*'),
        ],
      },
      { Effect: 'Allow', Action: ['rds:AddTagsToResource'], Resource: drillInstances },
      // The drill is encrypted under the instance's key; the DR key is no part of it.
      ...rdsUsesKeys([p.instanceKmsKeyArn]),
    ],
    drillDelete: [
      // Only instances tagged as this pipeline's drills: a drill id can never name the production instance. No
      // rds:DeleteDBInstanceAutomatedBackup: drills keep no automated backups (BackupRetentionPeriod 0), and on
      // "auto-backup:*" it could delete the retained backups of any instance in the region.
      { Effect: 'Allow', Action: ['rds:DeleteDBInstance'], Resource: drillInstances, Condition: ourDrill },
    ],
    // aws-asl: a recovery is restored under the operator's name, so the new instance is matched by the tags the
    // request must carry (recovery=true, this pipeline), and only instances carrying them may be deleted.
    recoveryRestore: [
      {
        Effect: 'Allow',
        Action: ['rds:RestoreDBInstanceToPointInTime'],
        Resource: [
          arn('rds', join(['db:', p.instanceId])),
          arn('rds', join(['subgrp:', ref('DrillSubnetGroup')])),
          arn('rds', 'og:*'),
          arn('rds', 'pg:*'),
        ],
      },
      {
        Effect: 'Allow',
        Action: ['rds:RestoreDBInstanceToPointInTime', 'rds:AddTagsToResource'],
        Resource: arn('rds', 'db:*'),
        Condition: {
          StringEquals: { 'aws:RequestTag/recovery': 'true', 'aws:RequestTag/pipeline': p.pipeline },
        },
      },
      ...rdsUsesKeys([p.instanceKmsKeyArn]),
    ],
    // Recovery reports only: <target>/recoveries/<name>/...
    recoveryReportWrite: [
      { Effect: 'Allow', Action: ['s3:PutObject'], Resource: s3Arn(primaryBucket, '/*/recoveries/*') },
      {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey'],
        Resource: primaryKey,
        Condition: throughS3(region),
      },
    ],
    recoveryDelete: [
      {
        Effect: 'Allow',
        Action: ['rds:DeleteDBInstance'],
        Resource: arn('rds', 'db:*'),
        Condition: { StringEquals: { 'rds:db-tag/recovery': 'true', 'rds:db-tag/pipeline': p.pipeline } },
      },
    ],
    alertPublish: [
      { Effect: 'Allow', Action: ['sns:Publish'], Resource: ref('AlertTopic') },
      // Publishing to a KMS-encrypted topic: SNS uses the topic's key with the publisher's rights.
      {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: { 'Fn::GetAtt': ['AlertsKey', 'Arn'] },
        Condition: { StringEquals: { 'kms:ViaService': join(['sns.', region, '.amazonaws.com']) } },
      },
    ],
  };
}

const pascal = (key) => key[0].toUpperCase() + key.slice(1);

/** The role logical id of a function, as serverless.yml's `role:` names it. */
const roleLogicalId = (functionKey) => `${pascal(functionKey)}Role`;

function role(functionKey, statements, p) {
  const functionName = `${p.service}-${p.stage}-${functionKey}`;
  const logGroup = arn('logs', `log-group:/aws/lambda/${functionName}:*`);
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: `keycloak-backup ${p.stage}: execution role of ${functionKey} only`,
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'lambda.amazonaws.com' },
            Action: 'sts:AssumeRole',
          },
        ],
      },
      Policies: [
        {
          PolicyName: functionKey,
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: logGroup },
              {
                // A function in a VPC manages its network interfaces; EC2 authorises these calls only on "*"
                // (the same statement as the AWSLambdaVPCAccessExecutionRole managed policy).
                Effect: 'Allow',
                Action: [
                  'ec2:CreateNetworkInterface',
                  'ec2:DescribeNetworkInterfaces',
                  'ec2:DescribeSubnets',
                  'ec2:DeleteNetworkInterface',
                  'ec2:AssignPrivateIpAddresses',
                  'ec2:UnassignPrivateIpAddresses',
                ],
                Resource: '*',
              },
              ...statements,
            ],
          },
        },
      ],
    },
  };
}

/** The Resources of every function role. */
async function roles({ resolveVariable, resolveConfigurationProperty }) {
  const p = {
    service: await resolveVariable('self:service'),
    storageName: await resolveVariable('self:custom.storageName'),
    stage: await resolveVariable('sls:stage'),
    drRegion: await resolveVariable('param:drRegion'),
    drKmsKeyArn: await resolveVariable('param:drKmsKeyArn'),
    instanceKmsKeyArn: await resolveVariable('param:instanceKmsKeyArn'),
    instanceId: await resolveVariable('param:instanceId'),
    replicaInstanceId: await resolveVariable('param:replicaInstanceId'),
    secretArn: await resolveVariable('param:secretArn'),
    scratchSecretArn: await resolveVariable('param:scratchSecretArn'),
    pipeline: await resolveVariable('self:custom.pipelineName'),
  };
  const sets = permissionSets(p);
  const functions = resolveConfigurationProperty
    ? await resolveConfigurationProperty(['functions'])
    : undefined;
  const keys = Object.keys(FUNCTION_PERMISSIONS);
  for (const key of Object.keys(functions ?? {})) {
    if (!keys.includes(key)) throw new Error(`function ${key} has no entry in serverless/iam.cjs`);
  }
  const resources = {};
  for (const [key, setNames] of Object.entries(FUNCTION_PERMISSIONS)) {
    resources[roleLogicalId(key)] = role(
      key,
      setNames.flatMap((name) => {
        if (!sets[name]) throw new Error(`serverless/iam.cjs: ${key} names no permission set "${name}"`);
        return sets[name];
      }),
      p,
    );
  }
  return { Resources: resources };
}

module.exports = { roles, roleLogicalId, FUNCTION_PERMISSIONS };
