// Disk full under the local S3 server: a write that does not fit fails, as S3 would refuse it, and leaves no object
// (a 0-byte object looking complete was what s3rver left). Needs a small tmpfs, so it runs as root only.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.js';
import { type LocalS3Server, startS3Server } from '../../local/s3-server.js';

const canMount = process.getuid?.() === 0;
let mountPoint: string;
let server: LocalS3Server;
let store: S3ObjectStore;

beforeAll(async () => {
  if (!canMount) return;
  mountPoint = await mkdtemp(path.join(tmpdir(), 'kb-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]);
  server = await startS3Server({ directory: path.join(mountPoint, 's3'), buckets: ['kb-full'] });
  store = new S3ObjectStore({ bucket: 'kb-full', region: 'eu-west-1', endpoint: server.endpoint });
});

afterAll(async () => {
  if (!canMount) return;
  await server?.stop();
  execFileSync('umount', [mountPoint]);
  await rm(mountPoint, { recursive: true, force: true });
});

describe.skipIf(!canMount)('the local S3 server on a full disk', () => {
  it('refuses a single-part object that does not fit and stores nothing under its key', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    await expect(store.putStream('t/one.bin', Readable.from([body]))).rejects.toThrow();
    expect(await store.head('t/one.bin')).toBeUndefined();
  });

  it('refuses a multipart object that does not fit and stores nothing under its key', async () => {
    const part = Buffer.alloc(1024 * 1024, 9);
    const parts = Array.from({ length: 12 }, () => part);
    await expect(store.putStream('t/many.bin', Readable.from(parts))).rejects.toThrow();
    expect(await store.head('t/many.bin')).toBeUndefined();
  });

  it('still stores what fits afterwards', async () => {
    await store.putStream('t/small.json', Readable.from([Buffer.from('{"ok":true}')]));
    expect(await store.getJson('t/small.json')).toEqual({ ok: true });
  });
});
