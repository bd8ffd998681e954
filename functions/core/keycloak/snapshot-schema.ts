// Validation of a SourceSnapshot read back from storage (it travels inside the manifest).
import { z } from 'zod';
import type { SourceSnapshot } from './types.js';

export const sourceSnapshotSchema = z.object({
  tableCounts: z.record(z.string(), z.number().int().nonnegative()),
  schemaDigest: z.string().regex(/^[0-9a-f]{64}$/),
  realms: z.array(z.string()),
  keyFingerprints: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
  keycloakVersion: z.string().nullable().optional(),
}) satisfies z.ZodType<SourceSnapshot>;
