import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { parseEndpoint, SecretsDatabaseLocator } from '../../functions/adapters/aws/secrets-locator.js';
import { ConfigurationError, KeyUnavailableError, TransientError } from '../../functions/core/errors.js';
import type { TargetConfig } from '../../functions/platform/config.js';
import { sdkError, serverError, throttled } from './aws-sdk-errors.js';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:kc-db-AbCdEf';
const targets: TargetConfig[] = [
  {
    name: 'kc',
    database: 'keycloak',
    replica: 'kc-replica.abc.eu-west-1.rds.amazonaws.com',
    instanceId: 'kc-primary',
    secretArn: SECRET_ARN,
  },
];
const CA = '/opt/certs/rds-global-bundle.pem';

function build(
  secret: unknown = {
    username: 'keycloak',
    password: 'p@ss:w/rd?',
    host: 'kc-primary.abc.eu-west-1.rds.amazonaws.com',
    port: 5433,
  },
) {
  const client = new SecretsManagerClient({ region: 'eu-west-1' });
  const mock = mockClient(client);
  mock.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(secret) });
  const locator = new SecretsDatabaseLocator({ targets, sslRootCert: CA, client });
  return { mock, locator };
}

describe('SecretsDatabaseLocator', () => {
  it('builds a verify-full URL to the replica with the secret credentials, escaped', async () => {
    const { mock, locator } = build();

    const url = await locator.connectionUrl('kc', 'replica');

    expect(url).toBe(
      'postgresql://keycloak:p%40ss%3Aw%2Frd%3F@kc-replica.abc.eu-west-1.rds.amazonaws.com:5433/keycloak' +
        '?sslmode=verify-full&sslrootcert=%2Fopt%2Fcerts%2Frds-global-bundle.pem',
    );
    expect(mock.commandCalls(GetSecretValueCommand)[0]!.args[0].input).toEqual({ SecretId: SECRET_ARN });
    const parsed = new URL(url);
    expect(decodeURIComponent(parsed.password)).toBe('p@ss:w/rd?');
  });

  it("uses the secret's host for the primary when none is configured", async () => {
    const { locator } = build();

    const url = new URL(await locator.connectionUrl('kc', 'primary'));

    expect(url.hostname).toBe('kc-primary.abc.eu-west-1.rds.amazonaws.com');
    expect(url.port).toBe('5433');
  });

  it('reads the secret once per process (cold start)', async () => {
    const { mock, locator } = build();

    await locator.connectionUrl('kc', 'replica');
    await locator.connectionUrl('kc', 'primary');
    await locator.urlForEndpoint('kc', { host: 'drill-kc.abc.eu-west-1.rds.amazonaws.com', port: 5432 });

    expect(mock.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('asks again after a failed read instead of caching the failure', async () => {
    const { mock, locator } = build();
    mock
      .on(GetSecretValueCommand)
      .rejectsOnce(throttled())
      .resolves({ SecretString: '{"username":"u","password":"p"}' });

    await expect(locator.connectionUrl('kc', 'replica')).rejects.toBeInstanceOf(TransientError);
    await expect(locator.connectionUrl('kc', 'replica')).resolves.toContain('postgresql://u:p@');
  });

  it('turns a 5xx into TransientError', async () => {
    const { mock, locator } = build();
    mock.on(GetSecretValueCommand).rejects(serverError());

    await expect(locator.connectionUrl('kc', 'replica')).rejects.toBeInstanceOf(TransientError);
  });

  it('turns a missing secret into ConfigurationError and a KMS failure into KeyUnavailableError', async () => {
    const { mock, locator } = build();
    mock.on(GetSecretValueCommand).rejects(sdkError('ResourceNotFoundException', 400));
    await expect(locator.connectionUrl('kc', 'replica')).rejects.toBeInstanceOf(ConfigurationError);

    mock.on(GetSecretValueCommand).rejects(sdkError('DecryptionFailure', 400));
    await expect(locator.connectionUrl('kc', 'replica')).rejects.toBeInstanceOf(KeyUnavailableError);
  });

  it('refuses a secret without username or password and never quotes it', async () => {
    const { locator } = build({ user: 'keycloak', pass: 'hunter2' });

    const error = await locator.connectionUrl('kc', 'replica').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigurationError);
    expect(String((error as Error).message)).not.toContain('hunter2');
  });

  it('refuses a target without a secret ARN', async () => {
    const client = new SecretsManagerClient({ region: 'eu-west-1' });
    const locator = new SecretsDatabaseLocator({
      targets: [{ name: 'kc', database: 'keycloak', replica: 'h' }],
      sslRootCert: CA,
      client,
    });

    await expect(locator.connectionUrl('kc', 'replica')).rejects.toThrow(/no secretArn/);
  });

  it('parses host, host:port and postgres URLs as endpoints', () => {
    expect(parseEndpoint('db.example.com')).toEqual({ host: 'db.example.com', port: undefined });
    expect(parseEndpoint('db.example.com:6432')).toEqual({ host: 'db.example.com', port: 6432 });
    expect(parseEndpoint('postgres://x:y@db:7000/kc')).toEqual({ host: 'db', port: 7000 });
    expect(() => parseEndpoint('db example')).toThrow(ConfigurationError);
  });
});
