// Wires the ports to AWS: S3 buckets under SSE-KMS, the two-region KMS keyring, RDS, SNS and Secrets Manager.

import { KmsKeys } from '../adapters/aws/kms-keyring.js';
import { RdsPointInTimeEngine } from '../adapters/aws/rds-pitr.js';
import { RdsReplicaMonitor } from '../adapters/aws/rds-replica.js';
import { RdsSnapshotEngine } from '../adapters/aws/rds-snapshots.js';
import { SecretsDatabaseLocator } from '../adapters/aws/secrets-locator.js';
import { SnsNotifier } from '../adapters/aws/sns-notifier.js';
import { copyObjectVerified } from '../adapters/copy-object.js';
import { EsdkEnvelope } from '../adapters/crypto/envelope.js';
import { S3ObjectStore } from '../adapters/s3-object-store.js';
import { type Envelope, systemClock } from '../core/ports.js';
import { databaseTools, memoize, pgBinaries, requiredSetting } from './common-wiring.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Services } from './services.js';

/** Where the pg_dump layer puts the PostgreSQL client programs (layers are mounted under /opt). */
export const LAYER_BIN_DIR = '/opt/bin';
/** Lambda's only writable directory. */
const LAMBDA_TMP = '/tmp/keycloak-backup';

/**
 * Every AWS client is created here once per cold start, in the region of the resource it talks to. Nothing is called
 * at build time: the first call happens in the handler, where its errors become named pipeline errors.
 */
export async function awsServices(config: Config, logger: Logger): Promise<Services> {
  const primaryKeyArn = required(config.KB_KMS_KEY_ID, 'KB_KMS_KEY_ID');
  const drKeyArn = required(config.KB_DR_KMS_KEY_ID, 'KB_DR_KMS_KEY_ID');
  const objectLock = config.KB_OBJECT_LOCK_MODE === 'NONE' ? undefined : config.KB_OBJECT_LOCK_MODE;

  // Each region's bucket, encrypted at rest under that region's key, with the same Object Lock.
  const regionStore = (bucket: string, region: string, kmsKeyId: string) =>
    new S3ObjectStore({
      bucket,
      region,
      sse: { kmsKeyId },
      objectLock: objectLock !== undefined,
      objectLockMode: objectLock,
    });
  const primaryStore = regionStore(config.KB_PRIMARY_BUCKET, config.KB_PRIMARY_REGION, primaryKeyArn);
  const drStore = regionStore(config.KB_DR_BUCKET, config.KB_DR_REGION, drKeyArn);

  const keys = new KmsKeys({ primaryKeyArn, drKeyArn });
  const esdk = new EsdkEnvelope({
    keyring: keys.keyring,
    keyIds: keys.keyIds,
    fingerprint: keys.fingerprint,
  });
  // The preflight also says which key is disabled or pending deletion, before the data-key round trip fails.
  const envelope: Envelope = {
    keyFingerprint: () => esdk.keyFingerprint(),
    sealManifest: (bytes, context) => esdk.sealManifest(bytes, context),
    openManifestSeal: (bytes, seal, context) => esdk.openManifestSeal(bytes, seal, context),
    encryptStream: (context) => esdk.encryptStream(context),
    decryptStream: (context) => esdk.decryptStream(context),
    describe: () => esdk.describe(),
    checkUsable: async () => {
      await keys.checkKeysEnabled();
      await esdk.checkUsable();
    },
  };

  // The drill reads the DR copy of a dump with the DR key alone (decrypt only).
  const drEnvelope = new EsdkEnvelope({
    keyring: keys.drOnlyKeyring(),
    keyIds: [drKeyArn],
    // The same pair of keys wrote the backups: their manifests record this fingerprint.
    fingerprint: keys.fingerprint,
  });

  const databases = new SecretsDatabaseLocator({
    targets: config.KB_TARGETS,
    sslRootCert: config.KB_PG_SSL_ROOT_CERT,
    region: config.KB_PRIMARY_REGION,
  });
  const binaries = pgBinaries(config, LAYER_BIN_DIR);

  logger.debug('aws services wired', {
    primaryBucket: config.KB_PRIMARY_BUCKET,
    drBucket: config.KB_DR_BUCKET,
    objectLock: config.KB_OBJECT_LOCK_MODE,
  });

  return {
    config,
    logger,
    clock: systemClock,
    primaryStore,
    drStore,
    envelope,
    snapshots: new RdsSnapshotEngine({
      targets: config.KB_TARGETS,
      pipeline: config.KB_PIPELINE_NAME,
      primaryRegion: config.KB_PRIMARY_REGION,
      drRegion: config.KB_DR_REGION,
      drKmsKeyArn: drKeyArn,
    }),
    pitr: new RdsPointInTimeEngine({
      targets: config.KB_TARGETS,
      pipeline: config.KB_PIPELINE_NAME,
      subnetGroup: config.KB_DRILL_SUBNET_GROUP,
      securityGroupIds: config.KB_DRILL_SECURITY_GROUP_IDS,
      instanceClass: config.KB_DRILL_INSTANCE_CLASS,
      maxMinutes: config.KB_DRILL_MAX_MINUTES,
      urls: databases,
      region: config.KB_PRIMARY_REGION,
    }),
    notifier: new SnsNotifier({
      topicArn: required(config.KB_ALERT_TOPIC_ARN, 'KB_ALERT_TOPIC_ARN'),
      region: config.KB_PRIMARY_REGION,
    }),
    databases,
    binaries,
    drEnvelope,
    tools: databaseTools(config, {
      binaries,
      databases,
      envelope,
      tempDir: `${LAMBDA_TMP}/tmp`,
      // Full verification's scratch server: its credentials come from Secrets Manager, never the environment.
      scratchServerUrl: scratchServer(config, databases),
      // RDS says whether the replica is up and replicating, and CloudWatch how far behind it is, before each dump.
      replicaMonitor: new RdsReplicaMonitor({
        targets: config.KB_TARGETS,
        region: config.KB_PRIMARY_REGION,
        maxLagSeconds: config.KB_REPLICA_MAX_LAG_SECONDS,
      }),
    }),
    copyObject: copyObjectVerified,
  };
}

function scratchServer(config: Config, databases: SecretsDatabaseLocator) {
  const secretArn = config.KB_SCRATCH_SECRET_ARN;
  if (!secretArn) return undefined;
  return memoize(() =>
    databases.serverUrlFromSecret(secretArn, 'the scratch server (KB_SCRATCH_SECRET_ARN)'),
  );
}

function required(value: string | undefined, name: string): string {
  return requiredSetting(value, name, 'serverless.yml sets it from the stack; see docs/aws.md');
}
