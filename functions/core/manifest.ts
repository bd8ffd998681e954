// The backup manifest: a versioned, validated record written last; a backup without one is incomplete.
import { z } from 'zod';
import { ManifestInvalidError } from './errors.js';
import { checkRecordSchema, sourceSnapshotSchema } from './keycloak/snapshot-schema.js';
import { TIERS } from './schedule.js';
import { schemaProblems } from './schema-problems.js';

export const MANIFEST_VERSION = 1;

const isoTime = z.string().datetime({ offset: true });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

const verification = z.object({
  at: isoTime,
  level: z.enum(['checksum', 'archive', 'full']),
  passed: z.boolean(),
  /** Check name → pass/warn/fail, never values. */
  checks: z.array(checkRecordSchema),
  durationMs: z.number().nonnegative(),
});

export const manifestSchema = z.object({
  manifestVersion: z.literal(MANIFEST_VERSION),
  backupId: z.string(),
  target: z.string(),
  tiers: z.array(z.enum(TIERS)).min(1),
  scheduledAt: isoTime,
  startedAt: isoTime,
  finishedAt: isoTime,
  retainUntil: isoTime,
  execution: z.string().optional(),
  source: z.object({
    endpointRole: z.enum(['replica', 'primary']),
    serverVersion: z.string(),
    pgDumpVersion: z.string(),
    keycloakVersion: z.string().nullable(),
    replicaLagSeconds: z.number().nullable(),
    database: z.string(),
    schema: z.string(),
    /** Which database this is (absent in manifests written before they were recorded; see core/source.ts). */
    systemIdentifier: z.string().nullable().optional(),
    databaseOid: z.number().int().nonnegative().optional(),
    /** host:port/database as configured, never credentials. */
    endpoint: z.string().optional(),
  }),
  dump: z.object({
    key: z.string(),
    format: z.literal('custom'),
    /** e.g. 'zstd:3' or 'gzip:6'; `compressedBy` says whose. */
    compression: z.string(),
    /**
     * 'pipeline': pg_dump wrote an uncompressed archive and the pipeline wrapped it in one zstd frame before the
     * encryption; 'pg_dump': the archive is compressed inside (pg_dump -Z). Absent in manifests written before
     * the pipeline compressed (issue 16): those are 'pg_dump'.
     */
    compressedBy: z.enum(['pipeline', 'pg_dump']).optional(),
    /** The decrypted object: its size and SHA-256 (with compressedBy 'pipeline', the zstd frame; else the archive). */
    plainBytes: z.number().int().nonnegative(),
    plainSha256: sha256,
    /** The custom-format archive pg_restore reads (after the pipeline's decompression); absent: plainBytes. */
    archiveBytes: z.number().int().nonnegative().optional(),
    storedBytes: z.number().int().positive(),
    storedSha256: sha256,
    durationMs: z.number().nonnegative(),
  }),
  encryption: z.object({
    suite: z.string(),
    frameLength: z.number().int().positive(),
    keyIds: z.array(z.string()).min(1),
    context: z.record(z.string(), z.string()),
    /** Fingerprint of the key the backup was written under (never key material); absent before it was recorded. */
    keyFingerprint: z.string().optional(),
  }),
  /** Taken inside the dump's own exported snapshot: the dump holds exactly these rows. */
  contents: sourceSnapshotSchema,
  verification: z.array(verification).default([]),
  copies: z
    .array(z.object({ region: z.string(), bucket: z.string(), key: z.string(), verifiedAt: isoTime }))
    .default([]),
  /** The MAC over every other field (manifest-auth.ts); absent in manifests written before it existed. */
  authentication: z
    .object({ algorithm: z.literal('HMAC-SHA256'), sealedKey: z.string().min(1), mac: sha256 })
    .optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestVerification = z.infer<typeof verification>;

/** Validates a manifest read from storage; a bad one names the key and the first problems. */
export function parseManifest(value: unknown, key: string): Manifest {
  const result = manifestSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = schemaProblems(result.error, '(manifest)').slice(0, 5).join('; ');
  throw new ManifestInvalidError(`manifest ${key} is invalid: ${problems}`, {
    hint: 'the backup cannot be trusted; take a new backup and inspect this object',
  });
}

/** Who compressed a stored dump: manifests from before the pipeline compressed say nothing, and mean pg_dump. */
export function compressedBy(dump: Manifest['dump']): 'pipeline' | 'pg_dump' {
  return dump.compressedBy ?? 'pg_dump';
}

/** The size of the archive pg_restore reads. */
export function archiveBytes(dump: Manifest['dump']): number {
  return dump.archiveBytes ?? dump.plainBytes;
}

/** A backup counts as verified when its newest verification passed. */
export function isVerified(manifest: Manifest): boolean {
  const last = manifest.verification.at(-1);
  return last?.passed === true;
}
