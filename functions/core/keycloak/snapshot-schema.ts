// Validation of a SourceSnapshot read back from storage (it travels inside the manifest).
import { z } from 'zod';
import type { KeyChangeReport } from './key-report.js';
import type { RealmKey, SessionCounts, SourceSnapshot } from './types.js';

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

export const sourceSnapshotSchema = z.object({
  tableCounts: z.record(z.string(), z.number().int().nonnegative()),
  schemaDigest: z.string().regex(/^[0-9a-f]{64}$/),
  realms: z.array(z.string()),
  keyFingerprints: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
  keycloakVersion: z.string().nullable().optional(),
  keys: z.array(realmKeySchema).optional(),
  sessions: sessionCountsSchema.nullable().optional(),
}) satisfies z.ZodType<SourceSnapshot>;

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
