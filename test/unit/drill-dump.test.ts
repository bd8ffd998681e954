import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { DecryptCommand, KMS } from '@aws-sdk/client-kms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { SecretsDatabaseLocator } from '../../functions/adapters/aws/secrets-locator.js';
import { EsdkEnvelope } from '../../functions/adapters/crypto/envelope.js';
import { restoreBudgetProblem } from '../../functions/core/drill-dump.js';
import { parseConfig } from '../../functions/platform/config.js';
import { DR_KEY, fakeKms, kmsEnvelope, PRIMARY_KEY } from '../support/fake-kms.js';

const MIB = 1024 * 1024;
const SCRATCH_SECRET = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:kb-scratch-AbCdEf';

const aws = {
  KB_RUNTIME: 'aws',
  KB_TARGETS: JSON.stringify([
    {
      name: 'keycloak',
      replica: 'kc-replica.example.com',
      replicaInstanceId: 'kc-replica',
      secretArn: 'arn:x',
    },
  ]),
  KB_PRIMARY_BUCKET: 'kb-primary',
  KB_DR_BUCKET: 'kb-dr',
  KB_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:111122223333:key/1',
  KB_DR_KMS_KEY_ID: 'arn:aws:kms:eu-central-1:111122223333:key/2',
  KB_ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:111122223333:alerts',
  KB_FULL_VERIFY_TIERS: '',
};

describe('restoreBudgetProblem', () => {
  const budget = { remainingMs: 900_000, reserveMs: 70_000, mibPerSecond: 20 };

  it('lets a dump through that the projected rate restores within the time left', () => {
    // 800 MiB at 20 MiB/s: 40 s of the 830 s left.
    expect(restoreBudgetProblem(800 * MIB, budget)).toBeUndefined();
  });

  it('says how long the restore would take, how long there is, and what to do instead', () => {
    // 20 GiB at 20 MiB/s: 1,024 s, more than 830 s.
    expect(restoreBudgetProblem(20 * 1024 * MIB, budget)).toBe(
      '20480.0 MiB of plain dump at the projected 20 MiB/s takes about 17.1 min, more than the 13.8 min this step ' +
        'has: not restored here; restore it with `keycloak-backup restore --from-dr` on a machine with the time ' +
        'and disk (docs/aws.md)',
    );
  });
});

describe('scratch server on AWS', () => {
  it('refuses a scratch-server URL in the environment, which would put its password in every function', () => {
    expect(() =>
      parseConfig({ ...aws, KB_SCRATCH_DATABASE_URL: 'postgres://verifier:secret@scratch/postgres' }),
    ).toThrow(/KB_SCRATCH_DATABASE_URL: not allowed on AWS .*set KB_SCRATCH_SECRET_ARN instead/);
  });

  it('requires the scratch secret ARN while full verification is on, and takes none otherwise', () => {
    expect(() => parseConfig({ ...aws, KB_FULL_VERIFY_TIERS: 'daily' })).toThrow(
      /KB_SCRATCH_SECRET_ARN: required on AWS while KB_FULL_VERIFY_TIERS is set/,
    );
    expect(parseConfig({ ...aws, KB_SCRATCH_SECRET_ARN: '' }).KB_SCRATCH_SECRET_ARN).toBeUndefined();
    expect(
      parseConfig({ ...aws, KB_FULL_VERIFY_TIERS: 'daily', KB_SCRATCH_SECRET_ARN: SCRATCH_SECRET })
        .KB_SCRATCH_SECRET_ARN,
    ).toBe(SCRATCH_SECRET);
  });

  it("builds the scratch server's URL from its secret, verifying the server's certificate", async () => {
    const client = new SecretsManagerClient({ region: 'eu-west-1' });
    const mock = mockClient(client);
    mock.on(GetSecretValueCommand, { SecretId: SCRATCH_SECRET }).resolves({
      SecretString: JSON.stringify({ username: 'verifier', password: 'p@ss', host: 'scratch.example' }),
    });
    const locator = new SecretsDatabaseLocator({ targets: [], sslRootCert: '/opt/ca.pem', client });

    const url = await locator.serverUrlFromSecret(SCRATCH_SECRET, 'the scratch server');

    expect(url).toBe(
      'postgresql://verifier:p%40ss@scratch.example:5432/postgres?sslmode=verify-full&sslrootcert=%2Fopt%2Fca.pem',
    );
  });

  it('refuses a scratch secret without a host, naming what it must hold', async () => {
    const client = new SecretsManagerClient({ region: 'eu-west-1' });
    mockClient(client)
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ username: 'verifier', password: 'p@ss' }) });
    const locator = new SecretsDatabaseLocator({ targets: [], sslRootCert: '/opt/ca.pem', client });

    await expect(locator.serverUrlFromSecret(SCRATCH_SECRET, 'the scratch server')).rejects.toThrow(
      'the secret of the scratch server has no "host"',
    );
  });
});

describe("the drill's DR-only keyring", () => {
  it('decrypts a backup with the DR key and never asks the primary key', async () => {
    const primary = new KMS({ region: 'eu-west-1' });
    const dr = new KMS({ region: 'eu-central-1' });
    const primaryMock = fakeKms(primary, PRIMARY_KEY);
    const drMock = fakeKms(dr, DR_KEY);
    const { keys, envelope: both } = kmsEnvelope(primary, dr);
    const encrypted = await buffer(
      Readable.from([Buffer.from('keycloak dump')]).pipe(both.encryptStream({ backupId: 'b1' })),
    );
    primaryMock.resetHistory();

    const drOnly = new EsdkEnvelope({
      keyring: keys.drOnlyKeyring(),
      keyIds: [DR_KEY],
      fingerprint: keys.fingerprint,
    });
    const plain = await buffer(Readable.from([encrypted]).pipe(drOnly.decryptStream({ backupId: 'b1' })));

    expect(plain.toString()).toBe('keycloak dump');
    expect(drMock.commandCalls(DecryptCommand).map((c) => c.args[0].input.KeyId)).toEqual([DR_KEY]);
    expect(primaryMock.calls()).toHaveLength(0);
  });
});
