// The protected storage of one region, shared by serverless.yml (primary) and serverless.dr.yml (DR): a KMS key
// with rotation and a versioned, Object Lock, SSE-KMS bucket that refuses plain HTTP and other encryption.
'use strict';

const { join, ref } = require('./cfn.cjs');

/** Administration of the key by the account, spelt out: the account may manage it but not use it by default. */
const KEY_ADMIN_ACTIONS = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:RotateKeyOnDemand',
];

/** What the account's IAM policies may grant on the key (the functions' roles narrow it further). */
const KEY_USE_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncrypt*',
  'kms:GenerateDataKey*',
  'kms:DescribeKey',
  'kms:CreateGrant',
  'kms:ListGrants',
  'kms:RevokeGrant',
];

const accountRoot = () => join(['arn:', ref('AWS::Partition'), ':iam::', ref('AWS::AccountId'), ':root']);

/** A customer-managed key (the AWS-managed aws/s3 and aws/rds keys cannot serve cross-region copies). */
function key(description, extraStatements = []) {
  return {
    Type: 'AWS::KMS::Key',
    DeletionPolicy: 'Retain',
    UpdateReplacePolicy: 'Retain',
    Properties: {
      Description: description,
      EnableKeyRotation: true,
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyPolicy: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AccountAdministersKey',
            Effect: 'Allow',
            Principal: { AWS: accountRoot() },
            Action: KEY_ADMIN_ACTIONS,
            Resource: '*',
          },
          {
            Sid: 'AccountIamPoliciesMayGrantUse',
            Effect: 'Allow',
            Principal: { AWS: accountRoot() },
            Action: KEY_USE_ACTIONS,
            Resource: '*',
          },
          ...extraStatements,
        ],
      },
    },
  };
}

/**
 * The bucket's name is derived, not generated, so that the primary stack knows the DR bucket's name:
 * <service>-<stage>-<account>-<region>.
 */
function bucketName(service, stage, region) {
  return join([service, '-', stage, '-', ref('AWS::AccountId'), '-', region], '');
}

function bucket({ name, keyLogicalId, objectLockMode, objectLockDays }) {
  return {
    Type: 'AWS::S3::Bucket',
    DeletionPolicy: 'Retain',
    UpdateReplacePolicy: 'Retain',
    Properties: {
      BucketName: name,
      VersioningConfiguration: { Status: 'Enabled' },
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: objectLockMode, Days: objectLockDays } },
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [keyLogicalId, 'Arn'] },
            },
            // One data key per bucket and period instead of a KMS call per object.
            BucketKeyEnabled: true,
          },
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LifecycleConfiguration: {
        Rules: [
          {
            Id: 'abort-incomplete-multipart-uploads',
            Status: 'Enabled',
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          },
          {
            // Manifests are small: IA and Glacier IR bill objects under 128 KiB as 128 KiB, so only dumps move.
            Id: 'older-dumps-to-cheaper-storage',
            Status: 'Enabled',
            ObjectSizeGreaterThan: 131072,
            Transitions: [
              { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
              { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
            ],
          },
          {
            // Retention deletes current versions (a delete marker); the old version goes once its lock has passed.
            Id: 'expire-deleted-versions',
            Status: 'Enabled',
            NoncurrentVersionExpiration: { NoncurrentDays: 1 },
            ExpiredObjectDeleteMarker: true,
          },
        ],
      },
    },
  };
}

function bucketPolicy(bucketLogicalId, keyLogicalId) {
  const bucketArn = { 'Fn::GetAtt': [bucketLogicalId, 'Arn'] };
  const objects = join([bucketArn, '/*'], '');
  return {
    Type: 'AWS::S3::BucketPolicy',
    Properties: {
      Bucket: ref(bucketLogicalId),
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'DenyPlainHttp',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [bucketArn, objects],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
          {
            // A put that asks for another encryption is refused; one that asks for none gets the bucket's SSE-KMS
            // default (UploadPart requests carry no encryption header, so "absent" must stay allowed).
            Sid: 'DenyPutsWithoutKms',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:PutObject',
            Resource: objects,
            Condition: {
              StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' },
              Null: { 's3:x-amz-server-side-encryption': 'false' },
            },
          },
          {
            Sid: 'DenyPutsUnderAnotherKey',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:PutObject',
            Resource: objects,
            Condition: {
              StringNotEquals: {
                's3:x-amz-server-side-encryption-aws-kms-key-id': { 'Fn::GetAtt': [keyLogicalId, 'Arn'] },
              },
              Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'false' },
            },
          },
        ],
      },
    },
  };
}

/**
 * The storage of one region. `role` names the outputs; the resources are the same in both regions.
 * Params: objectLockMode (GOVERNANCE | COMPLIANCE), objectLockDays (default retention).
 */
async function storage(role, { resolveVariable }) {
  const service = await resolveVariable('self:custom.storageName');
  const stage = await resolveVariable('sls:stage');
  const region = await resolveVariable('self:provider.region');
  const objectLockMode = await resolveVariable('param:objectLockMode');
  const objectLockDays = Number(await resolveVariable('param:objectLockDays'));
  if (!['GOVERNANCE', 'COMPLIANCE'].includes(objectLockMode)) {
    throw new Error(`param objectLockMode must be GOVERNANCE or COMPLIANCE, got "${objectLockMode}"`);
  }
  if (!Number.isInteger(objectLockDays) || objectLockDays < 1) {
    throw new Error(`param objectLockDays must be a positive whole number, got "${objectLockDays}"`);
  }
  return {
    Resources: {
      BackupKey: key(`keycloak-backup ${stage} ${role}: envelope and SSE-KMS key of the backups`),
      BackupKeyAlias: {
        Type: 'AWS::KMS::Alias',
        Properties: {
          AliasName: `alias/${service}-${stage}-${role}`,
          TargetKeyId: ref('BackupKey'),
        },
      },
      BackupBucket: bucket({
        name: bucketName(service, stage, region),
        keyLogicalId: 'BackupKey',
        objectLockMode,
        objectLockDays,
      }),
      BackupBucketPolicy: bucketPolicy('BackupBucket', 'BackupKey'),
    },
    Outputs: {
      BackupBucketName: { Description: `${role} backup bucket`, Value: ref('BackupBucket') },
      BackupKeyArn: {
        Description: `${role} KMS key (pass the DR one as param drKmsKeyArn)`,
        Value: { 'Fn::GetAtt': ['BackupKey', 'Arn'] },
      },
    },
  };
}

module.exports = {
  key,
  bucketName,
  accountRoot,
  primary: (context) => storage('primary', context),
  dr: (context) => storage('dr', context),
};
