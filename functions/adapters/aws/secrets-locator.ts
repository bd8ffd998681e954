// Where a target's database answers on AWS: its endpoint from configuration, its credentials from Secrets Manager.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError, KeyUnavailableError } from '../../core/errors.js';
import type { DatabaseLocator, EndpointRole } from '../../core/ports.js';
import { findTarget, type Target } from '../../core/targets.js';
import { callAws, describeAwsError, isAwsError } from './errors.js';

export interface DatabaseCredentials {
  username: string;
  password: string;
  host?: string;
  port?: number;
  dbname?: string;
}

export interface Endpoint {
  host: string;
  port?: number;
}

/** Builds a connection URL with a target's credentials for any endpoint (the restore drill's instance, say). */
export interface EndpointUrls {
  urlForEndpoint(target: string, endpoint: Endpoint): Promise<string>;
}

export interface SecretsDatabaseLocatorOptions {
  targets: readonly Target[];
  /** The RDS CA bundle (the pg_dump layer ships the global bundle at /opt/certs/rds-global-bundle.pem). */
  sslRootCert: string;
  client?: SecretsManagerClient;
  region?: string;
}

const DEFAULT_PORT = 5432;

/**
 * Reads each target's secret ({username, password, host?, port?, dbname?}) once per cold start and builds
 * `sslmode=verify-full` URLs, so both libpq (pg_dump) and node-postgres verify the RDS certificate and host name.
 * The URLs carry the password: they are handed to the caller and never logged here.
 */
export class SecretsDatabaseLocator implements DatabaseLocator, EndpointUrls {
  private readonly targets: readonly Target[];
  private readonly sslRootCert: string;
  private readonly client: SecretsManagerClient;
  private readonly cache = new Map<string, Promise<DatabaseCredentials>>();

  constructor(options: SecretsDatabaseLocatorOptions) {
    this.targets = options.targets;
    this.sslRootCert = options.sslRootCert;
    this.client = options.client ?? new SecretsManagerClient({ region: options.region });
  }

  async connectionUrl(target: string, role: EndpointRole): Promise<string> {
    const config = this.target(target);
    const credentials = await this.credentials(target);
    const configured = role === 'replica' ? config.replica : config.primary;
    const endpoint = configured
      ? parseEndpoint(configured)
      : credentials.host
        ? { host: credentials.host, port: credentials.port }
        : undefined;
    if (!endpoint) {
      throw new ConfigurationError(`target ${target} has no ${role} endpoint`, {
        hint: `set "${role}" on the target in KB_TARGETS, or "host" in its secret`,
      });
    }
    return this.buildUrl(config.database, credentials, endpoint);
  }

  async urlForEndpoint(target: string, endpoint: Endpoint): Promise<string> {
    return this.buildUrl(this.target(target).database, await this.credentials(target), endpoint);
  }

  /** The target's credentials, read from Secrets Manager on first use and kept for the life of this process. */
  async credentials(target: string): Promise<DatabaseCredentials> {
    const secretArn = this.target(target).secretArn;
    if (!secretArn) {
      throw new ConfigurationError(`target ${target} has no secretArn`, {
        hint: 'set "secretArn" on the target in KB_TARGETS to the Secrets Manager secret holding {username, password}',
      });
    }
    let pending = this.cache.get(secretArn);
    if (!pending) {
      pending = this.readSecret(target, secretArn);
      this.cache.set(secretArn, pending);
      // A failed read is not cached: the next attempt (a state machine retry) asks again.
      pending.catch(() => this.cache.delete(secretArn));
    }
    return pending;
  }

  /**
   * The maintenance URL of a server whose secret holds {username, password, host, port?, dbname?} (the scratch
   * server of full verification): read when first needed, never from the environment.
   */
  async serverUrlFromSecret(secretArn: string, what: string): Promise<string> {
    const credentials = await this.readSecret(what, secretArn);
    if (!credentials.host) {
      throw new ConfigurationError(`the secret of ${what} has no "host"`, {
        hint: 'the secret must hold {username, password, host, port?, dbname?} (as RDS writes it)',
      });
    }
    return this.buildUrl(credentials.dbname ?? 'postgres', credentials, {
      host: credentials.host,
      port: credentials.port,
    });
  }

  /** Forgets cached credentials, e.g. after the database refused them because the secret was rotated. */
  forget(): void {
    this.cache.clear();
  }

  private async readSecret(target: string, secretArn: string): Promise<DatabaseCredentials> {
    const response = await callAws(
      'secretsmanager:GetSecretValue',
      () => this.client.send(new GetSecretValueCommand({ SecretId: secretArn })),
      (error) => {
        if (isAwsError(error, 'DecryptionFailure')) {
          return new KeyUnavailableError(`the secret of target ${target} cannot be decrypted`, {
            cause: error,
            hint: "grant this role kms:Decrypt on the secret's KMS key",
          });
        }
        if (isAwsError(error, 'ResourceNotFound', 'AccessDenied', 'InvalidRequest', 'InvalidParameter')) {
          return new ConfigurationError(
            `the secret of target ${target} cannot be read: ${describeAwsError(error)}`,
            {
              cause: error,
              hint: "check the target's secretArn and that this role may call secretsmanager:GetSecretValue on it",
            },
          );
        }
        return undefined;
      },
    );
    return parseSecret(target, response.SecretString);
  }

  private target(name: string): Target {
    return findTarget(this.targets, name);
  }

  private buildUrl(databaseName: string, credentials: DatabaseCredentials, endpoint: Endpoint): string {
    const user = encodeURIComponent(credentials.username);
    const password = encodeURIComponent(credentials.password);
    const port = endpoint.port ?? credentials.port ?? DEFAULT_PORT;
    const database = encodeURIComponent(databaseName);
    const query = `sslmode=verify-full&sslrootcert=${encodeURIComponent(this.sslRootCert)}`;
    return `postgresql://${user}:${password}@${endpoint.host}:${port}/${database}?${query}`;
  }
}

/** `host`, `host:port`, or a postgres:// URL whose credentials are ignored (they come from the secret). */
export function parseEndpoint(text: string): Endpoint {
  if (/^postgres(ql)?:\/\//.test(text)) {
    const url = new URL(text);
    return { host: url.hostname, port: url.port ? Number(url.port) : undefined };
  }
  const match = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!match) {
    throw new ConfigurationError(`"${text}" is not a host or host:port`, {
      hint: "on AWS a target's replica and primary are endpoint host names, e.g. kc-replica.abc.eu-west-1.rds.amazonaws.com:5432",
    });
  }
  return { host: match[1]!, port: match[2] ? Number(match[2]) : undefined };
}

/** The secret's JSON; the error never quotes it (it holds the password). */
function parseSecret(target: string, text: string | undefined): DatabaseCredentials {
  const bad = (what: string) =>
    new ConfigurationError(`the secret of target ${target} ${what}`, {
      hint: 'the secret must be a JSON object with string "username" and "password" (as RDS writes it)',
    });
  if (!text) throw bad('has no string value');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('is not JSON');
  }
  if (typeof value !== 'object' || value === null) throw bad('is not a JSON object');
  const secret = value as Record<string, unknown>;
  if (typeof secret.username !== 'string' || typeof secret.password !== 'string') {
    throw bad('lacks "username" or "password"');
  }
  const port = typeof secret.port === 'number' ? secret.port : Number(secret.port);
  return {
    username: secret.username,
    password: secret.password,
    host: typeof secret.host === 'string' ? secret.host : undefined,
    port: Number.isInteger(port) && port > 0 ? port : undefined,
    dbname: typeof secret.dbname === 'string' ? secret.dbname : undefined,
  };
}
