// Who compressed a stored dump, as the manifest records it: old manifests stay valid and mean pg_dump.
import { describe, expect, it } from 'vitest';
import { buildManifest } from '../../functions/core/backup.js';
import { archiveBytes, compressedBy, parseManifest } from '../../functions/core/manifest.js';

/** A manifest as the pipeline wrote it before it compressed on its own (issue 16): no compressedBy, no archiveBytes. */
const before16 = {
  manifestVersion: 1,
  backupId: '20261101T0000Z',
  target: 'keycloak',
  tiers: ['hourly'],
  scheduledAt: '2026-11-01T00:00:00Z',
  startedAt: '2026-11-01T00:00:01Z',
  finishedAt: '2026-11-01T00:00:09Z',
  retainUntil: '2026-11-03T00:00:00Z',
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
    key: 'keycloak/2026/11/01/20261101T0000Z/dump.pgdump.enc',
    format: 'custom',
    compression: 'gzip:6',
    plainBytes: 1000,
    plainSha256: 'a'.repeat(64),
    storedBytes: 1100,
    storedSha256: 'b'.repeat(64),
    durationMs: 8000,
  },
  encryption: { suite: 's', frameLength: 1048576, keyIds: ['keycloak-backup/local-key'], context: {} },
  contents: { tableCounts: { realm: 2 }, schemaDigest: 'd', realms: ['master'], keyFingerprints: {} },
};

describe('the manifest says who compressed the dump', () => {
  it('reads a manifest from before issue 16 as compressed by pg_dump, its archive the decrypted bytes', () => {
    const manifest = parseManifest(before16, 'm.json');
    expect(manifest.dump.compressedBy).toBeUndefined();
    expect(compressedBy(manifest.dump)).toBe('pg_dump');
    expect(archiveBytes(manifest.dump)).toBe(1000);
  });

  it('records the pipeline as the compressor, the zstd level and the size of the archive inside', () => {
    const manifest = buildManifest({
      ...before16,
      tiers: ['hourly'],
      scheduledAt: new Date(before16.scheduledAt),
      startedAt: new Date(before16.startedAt),
      finishedAt: new Date(before16.finishedAt),
      retainUntil: new Date(before16.retainUntil),
      source: { ...before16.source, endpointRole: 'replica' },
      dump: { ...before16.dump, compression: 'zstd:3', compressedBy: 'pipeline', archiveBytes: 4200 },
    });
    const reread = parseManifest(JSON.parse(JSON.stringify(manifest)), 'm.json');
    expect(reread.dump).toMatchObject({
      compression: 'zstd:3',
      compressedBy: 'pipeline',
      archiveBytes: 4200,
    });
    expect(archiveBytes(reread.dump)).toBe(4200);
  });

  it('refuses a compressor it does not know', () => {
    expect(() =>
      parseManifest({ ...before16, dump: { ...before16.dump, compressedBy: 'lambda' } }, 'm.json'),
    ).toThrow(/dump.compressedBy/);
  });
});
