// The one configuration schema, parsed once from the environment; nothing else reads process.env.
import { z } from 'zod';
import { ConfigurationError } from '../core/errors.js';
import { schemaProblems } from '../core/schema-problems.js';
import type { Target } from '../core/targets.js';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** `pipeline`: pg_dump writes no compression, the pipeline zstd-compresses (KB_DUMP_ZSTD_LEVEL); else pg_dump's own. */
const compression = z
  .string()
  .regex(/^(pipeline|none|gzip(:[0-9])?|lz4(:[0-9]{1,2})?|zstd(:[0-9]{1,2})?|[0-9])$/, {
    message:
      'expected pipeline, or for pg_dump none, gzip[:0-9], lz4[:level], zstd[:level] or a gzip level 0-9',
  })
  .default('pipeline');

/** A target's short name, used in keys and tags: lower-case letters, digits and dashes. */
export const targetNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    'expected 1-63 lower-case letters, digits and dashes, not starting with a dash',
  );

const target: z.ZodType<Target, z.ZodTypeDef, unknown> = z.object({
  name: targetNameSchema,
  /** Database name on the server. */
  database: z.string().min(1).default('keycloak'),
  /** Where pg_dump connects: the read replica. A postgres:// URL (local) or host[:port] (AWS, credentials from the secret). */
  replica: z.string().min(1),
  /** The primary, for the local snapshot engine and checks that must not run on a standby. */
  primary: z.string().min(1).optional(),
  /** RDS instance identifier (AWS snapshots and point-in-time restore). */
  instanceId: z.string().optional(),
  /** RDS instance identifier of the read replica `replica` points at (AWS: checked before every dump). */
  replicaInstanceId: z
    .string()
    .regex(
      /^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$/,
      'expected an RDS instance identifier: 1-63 letters, digits and hyphens, starting with a letter, no two hyphens in a row, not ending with one',
    )
    .optional(),
  /** Secrets Manager ARN holding {username, password} (AWS). */
  secretArn: z.string().optional(),
});
export type TargetConfig = Target;

const jsonArray = <T extends z.ZodTypeAny>(item: T) =>
  z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected a JSON array' });
        return z.NEVER;
      }
    })
    .pipe(z.array(item).min(1, 'at least one target'));

const tierList = z
  .string()
  .transform((text) =>
    text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.enum(['hourly', 'daily', 'weekly', 'monthly'])));

export const configSchema = z
  .object({
    KB_RUNTIME: z.enum(['aws', 'local']).default('local'),
    KB_TARGETS: jsonArray(target),
    KB_PRIMARY_REGION: z.string().default('eu-west-1'),
    KB_DR_REGION: z.string().default('eu-central-1'),
    KB_PRIMARY_BUCKET: z.string().min(3),
    KB_DR_BUCKET: z.string().min(3),
    /** S3-compatible endpoint (local s3rver); unset on AWS. */
    KB_S3_ENDPOINT: z.string().url().optional(),
    KB_KMS_KEY_ID: z.string().optional(),
    KB_DR_KMS_KEY_ID: z.string().optional(),
    /** Local raw AES key file (mode 0600). */
    KB_LOCAL_KEY_FILE: z.string().optional(),
    KB_ALERT_TOPIC_ARN: z.string().optional(),
    /** Local alert outbox (JSON lines). */
    KB_OUTBOX_FILE: z.string().optional(),
    /** Local state folder (snapshots engine, drills). */
    KB_LOCAL_STATE_DIR: z.string().optional(),
    /** Local WAL archive of the primary (point-in-time restores); <KB_LOCAL_STATE_DIR>/wal-archive when unset. */
    KB_LOCAL_WAL_ARCHIVE_DIR: z.string().optional(),
    /** Directory of pg_dump / pg_restore; found on the machine when unset. */
    KB_PG_BIN_DIR: z.string().optional(),
    KB_KEYCLOAK_SCHEMA: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default('public'),
    KB_DUMP_COMPRESSION: compression,
    /**
     * zstd level of the pipeline's compression (KB_DUMP_COMPRESSION=pipeline). 1, not zstd's own 3: on the medium
     * bench archive (626.5 MiB of Keycloak's UUID-heavy rows) node's zstd took 1.1 s of thread-pool CPU at level 1
     * against 3.7 s at level 3 (dump worker 3.8-3.9 CPU s against 5.9-6.6 s), and wrote less: 154.5 MiB against
     * 160.4 MiB (pg_dump's own gzip 6: 162.6 MiB). bench/RESULTS.md, seventh round.
     */
    KB_DUMP_ZSTD_LEVEL: z.coerce.number().int().min(1).max(19).default(1),
    KB_DAILY_HOUR_UTC: z.coerce.number().int().min(0).max(23).default(0),
    /** 0 = Sunday. */
    KB_WEEKLY_DAY_UTC: z.coerce.number().int().min(0).max(6).default(0),
    KB_SNAPSHOT_TIERS: tierList.default('daily,weekly,monthly'),
    /** Tiers whose verification restores the dump fully and runs the Keycloak checks. */
    KB_FULL_VERIFY_TIERS: tierList.default('daily,weekly,monthly'),
    KB_RETAIN_HOURLY_HOURS: positiveInt(48),
    KB_RETAIN_DAILY_DAYS: positiveInt(14),
    KB_RETAIN_WEEKLY_DAYS: positiveInt(90),
    KB_RETAIN_MONTHLY_DAYS: positiveInt(365),
    KB_INCOMPLETE_GRACE_HOURS: positiveInt(6),
    KB_DRILL_MAX_MINUTES: positiveInt(180),
    /** Recovery point objective: the newest verified backup may be at most this old (report; the RPO alarm on AWS). */
    KB_RPO_SECONDS: positiveInt(7200),
    /** Recovery time objective: a restore drill should be verified within this (report, dashboard). */
    KB_RTO_SECONDS: positiveInt(3600),
    /** Near-class tolerance for a point-in-time restore compared with the nearest manifest, in percent. */
    KB_DRILL_NEAR_TOLERANCE_PERCENT: z.coerce.number().min(0).max(100).default(5),
    KB_LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
    /** The deployed stage the CLI drives on AWS (state machines are named keycloak-backup-<stage>-…). */
    KB_STAGE: z.string().default('dev'),
    /** A server where the pipeline may create and drop scratch databases for full verification (URL of its
     * maintenance database, e.g. postgres://verifier@host/postgres); required when KB_FULL_VERIFY_TIERS is not empty. */
    KB_SCRATCH_DATABASE_URL: z.string().optional(),
    /** On AWS, the scratch server instead: a Secrets Manager secret {username, password, host, port?, dbname?}, read
     * when first needed, so no password sits in any function's environment. */
    KB_SCRATCH_SECRET_ARN: z
      .union([z.literal(''), z.string().startsWith('arn:', 'a Secrets Manager secret ARN')])
      .optional()
      .transform((text) => text || undefined),
    /** Projected restore rate (plain MiB/s) a drill uses to decide whether the dump from the DR bucket can be
     * restored within one Lambda's time; a dump that cannot is reported as too large, not skipped in silence. */
    KB_DRILL_DUMP_RESTORE_MIB_PER_SECOND: z.coerce.number().positive().default(20),
    /** pg_restore parallelism for scratch restores and the CLI's default. */
    KB_RESTORE_JOBS: positiveInt(2),
    /** How far (seconds) the replica may be behind the primary when a dump starts; paused replay is always stale. */
    KB_REPLICA_MAX_LAG_SECONDS: positiveInt(300),
    /** A stale replica: `fail` (StaleReplicaError, alert) or `primary` (dump from the primary instead). */
    KB_STALE_REPLICA_ACTION: z.enum(['fail', 'primary']).default('fail'),
    /** Value of the `pipeline` tag on snapshots and drill instances (AWS): one per stage, so stages never touch each other's. */
    KB_PIPELINE_NAME: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
      .default('keycloak-backup'),
    /** CA bundle libpq and node-postgres verify the RDS certificate against (AWS; the pg_dump layer ships it). */
    KB_PG_SSL_ROOT_CERT: z.string().min(1).default('/opt/certs/rds-global-bundle.pem'),
    /** DB subnet group a restore drill lands in (AWS); without it RDS would pick the default VPC. */
    KB_DRILL_SUBNET_GROUP: z.string().optional(),
    /** Comma-separated VPC security group ids for restore drill instances (AWS). */
    KB_DRILL_SECURITY_GROUP_IDS: z
      .string()
      .default('')
      .transform((text) =>
        text
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    /** Instance class of restore drill instances (AWS); the source's class when unset. */
    KB_DRILL_INSTANCE_CLASS: z.string().optional(),
    /** S3 Object Lock mode the buckets were created with (AWS): objects are written with their retain-until under it. */
    KB_OBJECT_LOCK_MODE: z.enum(['NONE', 'GOVERNANCE', 'COMPLIANCE']).default('NONE'),
  })
  .superRefine((c, ctx) => {
    const need = (key: keyof typeof c, why: string) => {
      if (!c[key]) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: `required ${why}` });
    };
    if (c.KB_RUNTIME === 'aws') {
      c.KB_TARGETS.forEach((t, index) => {
        if (!t.replicaInstanceId)
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['KB_TARGETS', index, 'replicaInstanceId'],
            message: `required on AWS: the RDS instance identifier of ${t.name}'s read replica, whose status is checked before every dump`,
          });
      });
      need('KB_KMS_KEY_ID', 'on AWS');
      need('KB_DR_KMS_KEY_ID', 'on AWS');
      need('KB_ALERT_TOPIC_ARN', 'on AWS');
      if (c.KB_FULL_VERIFY_TIERS.length > 0)
        need('KB_SCRATCH_SECRET_ARN', 'on AWS while KB_FULL_VERIFY_TIERS is set');
      if (c.KB_SCRATCH_DATABASE_URL)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['KB_SCRATCH_DATABASE_URL'],
          message: 'not allowed on AWS (a password in the environment): set KB_SCRATCH_SECRET_ARN instead',
        });
    } else {
      need('KB_S3_ENDPOINT', 'locally');
      need('KB_LOCAL_KEY_FILE', 'locally');
      need('KB_OUTBOX_FILE', 'locally');
      need('KB_LOCAL_STATE_DIR', 'locally');
    }
  });

export type Config = z.infer<typeof configSchema>;

/** Every setting the schema knows. */
export const SETTING_NAMES: readonly string[] = Object.keys(configSchema.innerType().shape);

/** The settings (KB_* variables) of an environment, and nothing else of it. */
export function settingsFrom(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[0].startsWith('KB_') && entry[1] !== undefined,
    ),
  );
}

/** A KB_ variable the schema does not know but that is within two edits of one it does: a typo, not another tool's. */
export function misspelledSettings(
  env: Record<string, string | undefined>,
): { name: string; meant: string }[] {
  const found: { name: string; meant: string }[] = [];
  for (const name of Object.keys(settingsFrom(env))) {
    if (SETTING_NAMES.includes(name)) continue;
    const meant = SETTING_NAMES.map((known) => ({ known, distance: editDistance(name, known) }))
      .filter((c) => c.distance <= 2)
      .sort((a, b) => a.distance - b.distance)[0];
    if (meant) found.push({ name, meant: meant.known });
  }
  return found;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Parses the environment; one ConfigurationError lists every bad key (misspelled ones too) and what was expected. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = configSchema.safeParse(env);
  const problems = misspelledSettings(env).map(
    ({ name, meant }) => `${name}: not a setting (did you mean ${meant}?)`,
  );
  if (!result.success) {
    problems.push(...schemaProblems(result.error, '(config)'));
  }
  if (result.success && problems.length === 0) return result.data;
  throw new ConfigurationError(`invalid configuration: ${problems.join('; ')}`, {
    hint: 'fix the listed variables; the README (Configuration) lists every setting and its values',
  });
}

let cached: Config | undefined;

/** The process's configuration, parsed on first use. */
export function loadConfig(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}
