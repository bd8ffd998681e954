// Who compressed a stored dump, as the manifest records it: old manifests stay valid and mean pg_dump.
import { describe, expect, it } from 'vitest';
import { buildManifest } from '../../functions/core/backup.js';
import { archiveBytes, compressedBy, type Manifest, parseManifest } from '../../functions/core/manifest.js';
import { sampleManifest } from '../support/manifests.js';

/** A manifest as the pipeline wrote it before it compressed on its own (issue 16): no compressedBy, no archiveBytes. */
const stored = JSON.parse(JSON.stringify(sampleManifest('keycloak', '20261101T0000Z')));
delete stored.dump.compressedBy;
delete stored.dump.archiveBytes;
const before16 = stored as Record<string, unknown> & { dump: Manifest['dump'] };

describe('the manifest says who compressed the dump', () => {
  it('reads a manifest from before issue 16 as compressed by pg_dump, its archive the decrypted bytes', () => {
    const manifest = parseManifest(before16, 'm.json');
    expect(manifest.dump.compressedBy).toBeUndefined();
    expect(compressedBy(manifest.dump)).toBe('pg_dump');
    expect(archiveBytes(manifest.dump)).toBe(1000);
  });

  it('records the pipeline as the compressor, the zstd level and the size of the archive inside', () => {
    const old = parseManifest(before16, 'm.json');
    const manifest = buildManifest({
      ...old,
      scheduledAt: new Date(old.scheduledAt),
      startedAt: new Date(old.startedAt),
      finishedAt: new Date(old.finishedAt),
      retainUntil: new Date(old.retainUntil),
      dump: { ...old.dump, compression: 'zstd:3', compressedBy: 'pipeline', archiveBytes: 4200 },
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
