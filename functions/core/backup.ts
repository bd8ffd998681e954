// Builds the manifest of a finished dump and records later verifications and copies in it.
import { MANIFEST_VERSION, type Manifest, type ManifestVerification, manifestSchema } from './manifest.js';
import type { EncryptionDescription } from './ports.js';
import type { Tier } from './schedule.js';

export interface DumpFacts {
  key: string;
  compression: string;
  compressedBy: 'pipeline' | 'pg_dump';
  plainBytes: number;
  archiveBytes?: number;
  plainSha256: string;
  storedBytes: number;
  storedSha256: string;
  durationMs: number;
}

export interface ManifestInput {
  backupId: string;
  target: string;
  tiers: Tier[];
  scheduledAt: Date;
  startedAt: Date;
  finishedAt: Date;
  retainUntil: Date;
  execution?: string;
  source: Manifest['source'];
  dump: DumpFacts;
  encryption: EncryptionDescription & { context: Record<string, string> };
  contents: Manifest['contents'];
}

export function buildManifest(input: ManifestInput): Manifest {
  return manifestSchema.parse({
    manifestVersion: MANIFEST_VERSION,
    backupId: input.backupId,
    target: input.target,
    tiers: input.tiers,
    scheduledAt: input.scheduledAt.toISOString(),
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    retainUntil: input.retainUntil.toISOString(),
    execution: input.execution,
    source: input.source,
    dump: { ...input.dump, format: 'custom' },
    encryption: input.encryption,
    contents: input.contents,
    verification: [],
    copies: [],
  });
}

/** The encryption context bound into every dump: decrypting it as another backup fails. */
export function encryptionContextFor(target: string, backupId: string): Record<string, string> {
  return { 'keycloak-backup:target': target, 'keycloak-backup:backup-id': backupId };
}

export function withVerification(manifest: Manifest, verification: ManifestVerification): Manifest {
  return { ...manifest, verification: [...manifest.verification, verification] };
}

export function withCopy(manifest: Manifest, copy: Manifest['copies'][number]): Manifest {
  return { ...manifest, copies: [...manifest.copies.filter((c) => c.region !== copy.region), copy] };
}
