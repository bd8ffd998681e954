// Manifests and a real envelope for tests over fake ports: sealed as the pipeline seals them.
import { randomBytes } from 'node:crypto';
import { EsdkEnvelope } from '../../functions/adapters/crypto/envelope.js';
import { localKeyFingerprint } from '../../functions/adapters/local/key-file.js';
import { LOCAL_KEY_ID, localKeyring } from '../../functions/adapters/local/raw-aes-keyring.js';
import { buildManifest, encryptionContextFor } from '../../functions/core/backup.js';
import { dumpKey } from '../../functions/core/layout.js';
import type { Manifest } from '../../functions/core/manifest.js';
import { type Tier, timeOfBackupId } from '../../functions/core/schedule.js';

/** The local envelope (raw AES keyring, the real encryption library) over `key`, a fresh random key by default. */
export function testEnvelope(key: Buffer = randomBytes(32)): EsdkEnvelope {
  return new EsdkEnvelope({
    keyring: localKeyring(key),
    keyIds: [LOCAL_KEY_ID],
    fingerprint: localKeyFingerprint(key),
  });
}

export interface SampleManifestOptions {
  tiers?: Tier[];
  retainUntil?: Date;
  plainBytes?: number;
  storedSha256?: string;
  schemaDigest?: string;
}

/** A valid manifest of (target, backupId), as dumpStep builds it, not yet sealed. */
export function sampleManifest(
  target: string,
  backupId: string,
  options: SampleManifestOptions = {},
): Manifest {
  const at = timeOfBackupId(backupId);
  return buildManifest({
    backupId,
    target,
    tiers: options.tiers ?? ['hourly'],
    scheduledAt: at,
    startedAt: new Date(at.getTime() + 5_000),
    finishedAt: new Date(at.getTime() + 60_000),
    retainUntil: options.retainUntil ?? new Date(at.getTime() + 48 * 3_600_000),
    source: {
      endpointRole: 'replica',
      serverVersion: '15.18',
      pgDumpVersion: '15.18',
      keycloakVersion: '26.0.8',
      replicaLagSeconds: 0,
      database: 'keycloak',
      schema: 'public',
    },
    dump: {
      key: dumpKey(target, backupId),
      compression: 'gzip:6',
      compressedBy: 'pg_dump',
      plainBytes: options.plainBytes ?? 1000,
      plainSha256: 'a'.repeat(64),
      storedBytes: 1100,
      storedSha256: options.storedSha256 ?? 'b'.repeat(64),
      durationMs: 1000,
    },
    encryption: {
      suite: 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY',
      frameLength: 1048576,
      keyIds: [LOCAL_KEY_ID],
      context: encryptionContextFor(target, backupId),
    },
    contents: {
      tableCounts: { realm: 2 },
      schemaDigest: options.schemaDigest ?? backupId,
      realms: ['master'],
      keyFingerprints: {},
    },
  });
}
