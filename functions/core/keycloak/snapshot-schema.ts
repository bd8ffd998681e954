// Validation of Keycloak facts read back from storage: the source snapshot (the manifest's contents), check
// results (manifest verifications and drill reports), realm keys and key-change reports.
import { z } from 'zod';
import type { KeyChangeReport } from './key-report.js';
import { CHECK_STATUSES, type RealmKey, type SessionCounts, type SourceSnapshot } from './types.js';

/** One key component as the manifest records it: names, kid, status; never material. */
export const realmKeySchema = z.object({
  realm: z.string(),
  componentId: z.string(),
  name: z.string(),
  providerId: z.string(),
  algorithm: z.string(),
  use: z.enum(['sig', 'enc']),
  kid: z.string().nullable(),
  status: z.enum(['active', 'passive', 'disabled']),
  priority: z.number(),
  fingerprint: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
}) satisfies z.ZodType<RealmKey>;

export const sessionCountsSchema = z.object({
  userSessions: z.number().int().nonnegative(),
  offlineSessions: z.number().int().nonnegative(),
  clientSessions: z.number().int().nonnegative(),
}) satisfies z.ZodType<SessionCounts>;

/** The manifest's `contents`: taken inside the dump's own exported snapshot, so the dump holds exactly these rows. */
export const sourceSnapshotSchema = z.object({
  tableCounts: z.record(z.string(), z.number().int().nonnegative()),
  schemaDigest: z.string(),
  realms: z.array(z.string()),
  keyFingerprints: z.record(z.string(), z.string()),
  keycloakVersion: z.string().nullable().optional(),
  /** Every realm key component (kid, provider, status; never material); absent in older manifests. */
  keys: z.array(realmKeySchema).optional(),
  /** Persistent sessions in the dump, by kind; absent in older manifests. */
  sessions: sessionCountsSchema.nullable().optional(),
}) satisfies z.ZodType<SourceSnapshot>;

/** A check result as stored (a manifest's verification, a drill or recovery report): names and counts, no values. */
export const checkRecordSchema = z.object({
  name: z.string(),
  status: z.enum(CHECK_STATUSES),
  detail: z.string(),
  /** exact, near, churn or ignore (KEYCLOAK.md), on comparison checks. */
  class: z.string().optional(),
});
export type CheckRecord = z.infer<typeof checkRecordSchema>;

const keyChangeSchema = z.object({
  key: realmKeySchema,
  reason: z.enum(['removed', 'disabled', 'replaced']),
});
const activeChangeSchema = z.object({
  use: z.enum(['sig', 'enc']),
  algorithm: z.string(),
  from: realmKeySchema.nullable(),
  to: realmKeySchema.nullable(),
});

/** A key-change report read back from storage (the drill writes one beside its report). */
export const keyChangeReportSchema = z.object({
  stage: z.enum(['before', 'after']),
  restorePoint: z.string(),
  restorePointUnknown: z.string().optional(),
  keyCount: z.number().int().nonnegative(),
  realmsWithoutKeys: z.array(z.string()),
  comparisons: z.array(
    z.object({
      against: z.enum(['live', 'newest-verified-backup']),
      label: z.string(),
      realms: z
        .array(
          z.object({
            realm: z.string(),
            reintroduced: z.array(keyChangeSchema),
            lost: z.array(keyChangeSchema),
            activeChanged: z.array(activeChangeSchema),
            secretsReverted: z.array(activeChangeSchema),
            statusChanged: z.array(
              z.object({
                key: realmKeySchema,
                from: z.enum(['active', 'passive', 'disabled']),
                to: z.enum(['active', 'passive', 'disabled']),
              }),
            ),
          }),
        )
        .nullable(),
      unavailable: z.string().optional(),
    }),
  ),
  decidedBy: z.enum(['live', 'newest-verified-backup']).nullable(),
  reintroduced: z.array(keyChangeSchema),
  sessions: sessionCountsSchema.nullable(),
}) satisfies z.ZodType<KeyChangeReport>;
