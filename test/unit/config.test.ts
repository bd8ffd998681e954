import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../functions/core/errors.js';
import { parseConfig, settingsFrom } from '../../functions/platform/config.js';

const local = {
  KB_TARGETS: JSON.stringify([{ name: 'keycloak', replica: 'postgres://127.0.0.1:5433/keycloak' }]),
  KB_PRIMARY_BUCKET: 'kb-primary',
  KB_DR_BUCKET: 'kb-dr',
  KB_S3_ENDPOINT: 'http://127.0.0.1:4569',
  KB_LOCAL_KEY_FILE: '/tmp/key',
  KB_OUTBOX_FILE: '/tmp/outbox.jsonl',
  KB_LOCAL_STATE_DIR: '/tmp/state',
};

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = parseConfig(local);
    expect(config.KB_RUNTIME).toBe('local');
    expect(config.KB_RETAIN_HOURLY_HOURS).toBe(48);
    expect(config.KB_RETAIN_MONTHLY_DAYS).toBe(365);
    expect(config.KB_SNAPSHOT_TIERS).toEqual(['daily', 'weekly', 'monthly']);
    expect(config.KB_TARGETS[0]?.database).toBe('keycloak');
    expect(config.KB_DUMP_COMPRESSION).toBe('pipeline');
    expect(config.KB_DUMP_ZSTD_LEVEL).toBe(1);
  });

  it("takes pg_dump's own compression settings and refuses a zstd level zstd does not have", () => {
    expect(parseConfig({ ...local, KB_DUMP_COMPRESSION: 'gzip:6' }).KB_DUMP_COMPRESSION).toBe('gzip:6');
    expect(parseConfig({ ...local, KB_DUMP_ZSTD_LEVEL: '7' }).KB_DUMP_ZSTD_LEVEL).toBe(7);
    expect(() => parseConfig({ ...local, KB_DUMP_ZSTD_LEVEL: '23' })).toThrow(/KB_DUMP_ZSTD_LEVEL/);
  });

  it('lists every bad key in one error', () => {
    let error: unknown;
    try {
      parseConfig({
        ...local,
        KB_TARGETS: 'not json',
        KB_RETAIN_DAILY_DAYS: '-3',
        KB_DUMP_COMPRESSION: 'brotli',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    const message = (error as Error).message;
    expect(message).toContain('KB_TARGETS: expected a JSON array');
    expect(message).toContain('KB_RETAIN_DAILY_DAYS');
    expect(message).toContain('KB_DUMP_COMPRESSION');
  });

  it('requires the KMS keys and topic on AWS', () => {
    expect(() => parseConfig({ ...local, KB_RUNTIME: 'aws' })).toThrow(
      /KB_KMS_KEY_ID: required on AWS.*KB_DR_KMS_KEY_ID.*KB_ALERT_TOPIC_ARN/,
    );
  });

  it("requires each target's read replica instance id on AWS, and an RDS identifier wherever it is given", () => {
    const aws = {
      ...local,
      KB_RUNTIME: 'aws',
      KB_KMS_KEY_ID: 'arn:k1',
      KB_DR_KMS_KEY_ID: 'arn:k2',
      KB_ALERT_TOPIC_ARN: 'arn:t',
      KB_FULL_VERIFY_TIERS: '',
    };
    const withReplica = (replicaInstanceId?: string) =>
      JSON.stringify([{ name: 'keycloak', replica: 'kc-replica.example.com', replicaInstanceId }]);

    expect(() => parseConfig({ ...aws, KB_TARGETS: withReplica() })).toThrow(
      /KB_TARGETS\.0\.replicaInstanceId: required on AWS: the RDS instance identifier of keycloak's read replica/,
    );
    expect(parseConfig({ ...aws, KB_TARGETS: withReplica('kc-prod-replica-1') }).KB_TARGETS[0]).toMatchObject(
      {
        replicaInstanceId: 'kc-prod-replica-1',
      },
    );
    for (const bad of ['1replica', 'kc--replica', 'kc-replica-', 'kc_replica', 'r'.repeat(64)]) {
      expect(() => parseConfig({ ...aws, KB_TARGETS: withReplica(bad) }), bad).toThrow(
        /KB_TARGETS\.0\.replicaInstanceId: expected an RDS instance identifier/,
      );
    }
    // Locally there is no RDS: not needed.
    expect(() => parseConfig(local)).not.toThrow();
  });

  it('refuses a target name that cannot be an object key prefix', () => {
    const targets = JSON.stringify([{ name: 'Prod DB', replica: 'x' }]);
    expect(() => parseConfig({ ...local, KB_TARGETS: targets })).toThrow(/KB_TARGETS.0.name/);
  });

  it("names a misspelled setting and the one it looks like, and leaves other tools' KB_ variables alone", () => {
    expect(() => parseConfig({ ...local, KB_RETAIN_DAYLY_DAYS: '3' })).toThrow(
      'KB_RETAIN_DAYLY_DAYS: not a setting (did you mean KB_RETAIN_DAILY_DAYS?)',
    );
    expect(() => parseConfig({ ...local, KB_NODE22_DIR: '/opt/node' })).not.toThrow();
  });

  it('takes only the KB_ variables of an environment as settings', () => {
    expect(settingsFrom({ KB_LOG_LEVEL: 'DEBUG', PATH: '/bin', HOME: '/root' })).toEqual({
      KB_LOG_LEVEL: 'DEBUG',
    });
  });
});
