import { describe, expect, it } from 'vitest';
import { RdsPointInTimeEngine } from '../../functions/adapters/aws/rds-pitr.js';
import { RdsSnapshotEngine } from '../../functions/adapters/aws/rds-snapshots.js';
import { SecretsDatabaseLocator } from '../../functions/adapters/aws/secrets-locator.js';
import { SnsNotifier } from '../../functions/adapters/aws/sns-notifier.js';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.js';
import { awsServices } from '../../functions/platform/aws-services.js';
import { parseConfig } from '../../functions/platform/config.js';
import { createLogger } from '../../functions/platform/logger.js';

const env = {
  KB_RUNTIME: 'aws',
  KB_TARGETS: JSON.stringify([
    {
      name: 'kc',
      replica: 'kc-replica.abc.eu-west-1.rds.amazonaws.com',
      instanceId: 'kc',
      replicaInstanceId: 'kc-replica',
      secretArn: 'arn:s',
    },
  ]),
  KB_PRIMARY_REGION: 'eu-west-1',
  KB_DR_REGION: 'eu-central-1',
  KB_PRIMARY_BUCKET: 'kb-primary',
  KB_DR_BUCKET: 'kb-dr',
  KB_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-1111-aaaa-1111-aaaa1111aaaa',
  KB_DR_KMS_KEY_ID: 'arn:aws:kms:eu-central-1:111122223333:key/2222bbbb-2222-bbbb-2222-bbbb2222bbbb',
  KB_ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:111122223333:alerts',
  KB_FULL_VERIFY_TIERS: '',
  KB_OBJECT_LOCK_MODE: 'COMPLIANCE',
};

describe('awsServices', () => {
  it('wires every port to its AWS adapter, each bucket in its own region, without calling AWS', async () => {
    const services = await awsServices(parseConfig(env), createLogger({ silent: true }));

    expect(services.primaryStore).toBeInstanceOf(S3ObjectStore);
    expect([services.primaryStore.bucket, services.primaryStore.region]).toEqual(['kb-primary', 'eu-west-1']);
    expect([services.drStore.bucket, services.drStore.region]).toEqual(['kb-dr', 'eu-central-1']);
    expect(services.snapshots).toBeInstanceOf(RdsSnapshotEngine);
    expect(services.pitr).toBeInstanceOf(RdsPointInTimeEngine);
    expect(services.notifier).toBeInstanceOf(SnsNotifier);
    expect(services.databases).toBeInstanceOf(SecretsDatabaseLocator);
    expect(services.envelope.describe().keyIds).toEqual([env.KB_KMS_KEY_ID, env.KB_DR_KMS_KEY_ID]);
  });

  it('refuses KMS aliases: decryption matches data keys by key ARN', async () => {
    const config = parseConfig({ ...env, KB_KMS_KEY_ID: 'alias/keycloak-backup' });

    await expect(awsServices(config, createLogger({ silent: true }))).rejects.toThrow(/not a KMS key ARN/);
  });
});
