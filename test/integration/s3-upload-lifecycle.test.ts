// Local multipart uploads left over are aborted as the buckets' lifecycle rule aborts them on AWS (after a day).
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalS3Server, localS3ClientConfig, startS3Server } from '../../local/s3-server.js';

const BUCKET = 'kb-primary';
const DAY = 24 * 3_600_000;
let directory: string;
let server: LocalS3Server | undefined;

afterEach(async () => {
  await server?.stop();
  server = undefined;
  await rm(directory, { recursive: true, force: true });
});

const uploadsDir = () => path.join(directory, BUCKET, '._S3rver_uploads');

/** Makes an upload look started `ageMs` ago, as a run killed then would have left it. */
async function age(uploadId: string, ageMs: number): Promise<void> {
  const when = new Date(Date.now() - ageMs);
  await utimes(path.join(uploadsDir(), uploadId, 'key'), when, when);
}

describe('leftover multipart uploads in the local S3 server', () => {
  it('aborts an upload older than a day when the next one starts, parts and all, and keeps a recent one', async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'kb-s3-lifecycle-'));
    server = await startS3Server({ directory, buckets: [BUCKET] });
    const s3 = new S3Client(localS3ClientConfig(server.endpoint, 'eu-west-1'));
    const start = async (Key: string) =>
      (await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }))).UploadId!;

    const old = await start('keycloak/2026/11/20/20261120T0100Z/dump.pgdump.enc');
    await s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: 'keycloak/2026/11/20/20261120T0100Z/dump.pgdump.enc',
        UploadId: old,
        PartNumber: 1,
        Body: Buffer.alloc(4096, 7),
      }),
    );
    const recent = await start('keycloak/2026/11/21/20261121T0100Z/dump.pgdump.enc');
    await age(old, DAY + 60_000);
    await age(recent, DAY - 3_600_000);

    const next = await start('keycloak/2026/11/22/20261122T0100Z/dump.pgdump.enc');

    expect((await readdir(uploadsDir())).sort()).toEqual([recent, next].sort());
    // S3 answers a part for an aborted upload with NoSuchUpload.
    await expect(
      s3.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key: 'keycloak/2026/11/20/20261120T0100Z/dump.pgdump.enc',
          UploadId: old,
          PartNumber: 2,
          Body: Buffer.alloc(16, 1),
        }),
      ),
    ).rejects.toMatchObject({ name: 'NoSuchUpload' });
    s3.destroy();
  });

  it('aborts the old uploads a killed run left before it serves anything', async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'kb-s3-lifecycle-'));
    for (const [uploadId, ageMs] of [
      ['left-two-days-ago', 2 * DAY],
      ['left-an-hour-ago', 3_600_000],
    ] as const) {
      const dir = path.join(uploadsDir(), uploadId);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'key'), `keycloak/${uploadId}/dump.pgdump.enc`);
      await writeFile(path.join(dir, '1'), Buffer.alloc(1024));
      await age(uploadId, ageMs);
    }

    server = await startS3Server({ directory, buckets: [BUCKET] });

    expect(await readdir(uploadsDir())).toEqual(['left-an-hour-ago']);
  });
});
