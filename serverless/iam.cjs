// One least-privilege IAM role per Lambda, built from what each step does. No action is "*" and no resource is "*"
// except where AWS offers nothing narrower: Describe calls, and the network interfaces of a Lambda in a VPC.
'use strict';

const { arn, join, ref } = require('./cfn.cjs');
const { bucketName } = require('./storage.cjs');

const s3Arn = (bucket, suffix = '') => join(['arn:', ref('AWS::Partition'), ':s3:::', bucket, suffix]);

/** What each function may do, by permission set (defined below). Keys are the serverless function keys. */
const FUNCTION_PERMISSIONS = {
  planBackup: ['keysUse', 'secretRead'],
  dumpDatabase: ['keysUse', 'secretRead', 'primaryRead', 'primaryWrite'],
  verifyBackup: ['keysUse', 'primaryRead', 'primaryWrite', 'scratchSecretRead'],
  copyBackupToDr: ['keysUse', 'primaryRead', 'primaryWrite', 'drRead', 'drWrite'],
  createSnapshot: ['snapshotsDescribe', 'snapshotCreate'],
  checkSnapshot: ['snapshotsDescribe'],
  copySnapshotToDr: ['snapshotsDescribe', 'snapshotCopy'],
  applyRetention: [
    'keysDecrypt',
    'primaryRead',
    'drRead',
    'primaryDelete',
    'drDelete',
    'snapshotsDescribe',
    'snapshotDelete',
  ],
  reportBackup: ['keysUse', 'primaryRead', 'primaryWrite'],
  notifyFailure: ['alertPublish'],
  validateDrill: ['instancesDescribe'],
  startDrillRestore: ['instancesDescribe', 'drillRestore'],
  checkDrillRestore: ['instancesDescribe', 'secretRead'],
  // Writes the realm-key changes beside the drill report and alerts when a restore would reintroduce a key.
  verifyDrill: ['instancesDescribe', 'secretRead', 'keysUse', 'primaryRead', 'primaryWrite', 'alertPublish'],
  // aws-asl: the drill's restore of the nearest dump from the DR bucket, decrypted with the DR key alone.
  verifyDrillDump: ['instancesDescribe', 'secretRead', 'drKeyDecrypt', 'primaryRead', 'drRead'],
  teardownDrill: ['instancesDescribe', 'drillDelete'],
  recordDrill: ['keysUse', 'primaryRead', 'primaryWrite'],
  sweepDrills: ['instancesDescribe', 'drillDelete', 'alertPublish'],
  // aws-asl: the recover machine (keycloak-backup pitr), a kept point-in-time recovery that no sweep removes.
  startRecovery: ['instancesDescribe', 'recoveryRestore'],
  recordRecovery: ['keysUse', 'primaryRead', 'primaryWrite', 'alertPublish'],
  dropRecovery: ['instancesDescribe', 'recoveryDelete'],
};

function permissionSets(p) {
  const primaryBucket = ref('BackupBucket');
  const drBucket = bucketName(p.storageName, p.stage, p.drRegion);
  const keys = [{ 'Fn::GetAtt': ['BackupKey', 'Arn'] }, p.drKmsKeyArn];
  const snapshotIn = (region) => arn('rds', 'snapshot:kb-*', { region });
  const read = (bucket) => [
    { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: s3Arn(bucket) },
    { Effect: 'Allow', Action: ['s3:GetObject'], Resource: s3Arn(bucket, '/*') },
  ];
  const write = (bucket) => [
    {
      Effect: 'Allow',
      // PutObjectRetention: objects are written with their Object Lock retain-until.
      Action: ['s3:PutObject', 's3:PutObjectRetention', 's3:AbortMultipartUpload'],
      Resource: s3Arn(bucket, '/*'),
    },
  ];
  const del = (bucket) => [{ Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: s3Arn(bucket, '/*') }];
  const drillInstances = arn('rds', 'db:drill-*');
  const ourDrill = {
    StringEquals: { 'rds:db-tag/drill': 'true', 'rds:db-tag/pipeline': p.pipeline },
  };
  const rdsGrants = {
    // RDS encrypts a copy or a restore through a grant on the key, which it creates with the caller's rights.
    Effect: 'Allow',
    Action: ['kms:CreateGrant', 'kms:DescribeKey'],
    Resource: [p.instanceKmsKeyArn, p.drKmsKeyArn],
    Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
  };
  return {
    keysUse: [
      {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey'],
        Resource: keys,
      },
    ],
    keysDecrypt: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: keys }],
    // aws-asl: the DR key alone (the drill proves the DR region decrypts its copy without the primary key).
    drKeyDecrypt: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: p.drKmsKeyArn }],
    // aws-asl: full verification's scratch server, from its secret (never a password in the environment).
    scratchSecretRead: p.scratchSecretArn
      ? [{ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: p.scratchSecretArn }]
      : [],
    secretRead: [{ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: p.secretArn }],
    primaryRead: read(primaryBucket),
    primaryWrite: write(primaryBucket),
    primaryDelete: del(primaryBucket),
    drRead: read(drBucket),
    drWrite: write(drBucket),
    drDelete: del(drBucket),
    snapshotsDescribe: [
      // DescribeDBSnapshots without an identifier (listing) is only authorised on "*".
      { Effect: 'Allow', Action: ['rds:DescribeDBSnapshots'], Resource: '*' },
    ],
    snapshotCreate: [
      {
        Effect: 'Allow',
        Action: ['rds:CreateDBSnapshot'],
        Resource: [arn('rds', join(['db:', p.instanceId])), snapshotIn(ref('AWS::Region'))],
      },
      { Effect: 'Allow', Action: ['rds:AddTagsToResource'], Resource: snapshotIn(ref('AWS::Region')) },
    ],
    snapshotCopy: [
      {
        Effect: 'Allow',
        Action: ['rds:CopyDBSnapshot'],
        Resource: [snapshotIn(ref('AWS::Region')), snapshotIn(p.drRegion)],
      },
      { Effect: 'Allow', Action: ['rds:AddTagsToResource'], Resource: snapshotIn(p.drRegion) },
      rdsGrants,
      // Tells an AWS-managed source key (which cannot be copied across regions) from a customer-managed one.
      { Effect: 'Allow', Action: ['kms:DescribeKey'], Resource: p.instanceKmsKeyArn },
    ],
    snapshotDelete: [
      {
        Effect: 'Allow',
        Action: ['rds:DeleteDBSnapshot'],
        Resource: [snapshotIn(ref('AWS::Region')), snapshotIn(p.drRegion)],
        Condition: { StringEquals: { 'rds:snapshot-tag/pipeline': p.pipeline } },
      },
    ],
    instancesDescribe: [
      {
        Effect: 'Allow',
        Action: ['rds:DescribeDBInstances', 'rds:DescribeDBInstanceAutomatedBackups'],
        Resource: '*',
      },
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
      rdsGrants,
    ],
    drillDelete: [
      // Only instances tagged as this pipeline's drills: a drill id can never name the production instance.
      { Effect: 'Allow', Action: ['rds:DeleteDBInstance'], Resource: drillInstances, Condition: ourDrill },
      {
        Effect: 'Allow',
        Action: ['rds:DeleteDBInstanceAutomatedBackup'],
        Resource: arn('rds', 'auto-backup:*'),
      },
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
      rdsGrants,
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
      // Publishing to a KMS-encrypted topic.
      {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: { 'Fn::GetAtt': ['AlertsKey', 'Arn'] },
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
      setNames.flatMap((name) => sets[name]),
      p,
    );
  }
  return { Resources: resources };
}

module.exports = { roles, roleLogicalId, FUNCTION_PERMISSIONS };
