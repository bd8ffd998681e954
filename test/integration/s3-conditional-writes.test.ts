// The local S3 server honours S3's conditional writes: create-only (If-None-Match: *) on PutObject and
// CompleteMultipartUpload, replace-if-unchanged (If-Match: <ETag>) on PutObject.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalS3Server, localS3ClientConfig, startS3Server } from '../../local/s3-server.js';

const BUCKET = 'kb-primary';
let directory: string;
let server: LocalS3Server;
let s3: S3Client;

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'kb-s3-conditional-'));
  server = await startS3Server({ directory, buckets: [BUCKET] });
  s3 = new S3Client(localS3ClientConfig(server.endpoint, 'eu-west-1'));
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

const read = async (Key: string) =>
  (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToString();

const put = (Key: string, body: string, createOnly = true) =>
  s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key, Body: body, ...(createOnly ? { IfNoneMatch: '*' } : {}) }),
  );

/** The error S3 answers a create-only write over an existing key with. */
async function preconditionFailed(sent: Promise<unknown>) {
  const error = await sent.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(S3ServiceException);
  expect((error as S3ServiceException).name).toBe('PreconditionFailed');
  expect((error as S3ServiceException).$metadata.httpStatusCode).toBe(412);
}

async function upload(Key: string, body: string) {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
  const { ETag } = await s3.send(
    new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 1, Body: body }),
  );
  return { UploadId: UploadId!, parts: [{ PartNumber: 1, ETag }] };
}

const complete = (Key: string, started: Awaited<ReturnType<typeof upload>>, createOnly = true) =>
  s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: BUCKET,
      Key,
      UploadId: started.UploadId,
      MultipartUpload: { Parts: started.parts },
      ...(createOnly ? { IfNoneMatch: '*' } : {}),
    }),
  );

describe('create-only writes on the local S3 server', () => {
  it('PutObject with If-None-Match: * creates a free key and answers 412 PreconditionFailed over a taken one', async () => {
    await put('put/claim.json', 'first');
    await preconditionFailed(put('put/claim.json', 'second'));
    expect(await read('put/claim.json')).toBe('first');
    // Without the condition the write replaces the object, as S3 does.
    await put('put/claim.json', 'third', false);
    expect(await read('put/claim.json')).toBe('third');
  });

  it('CompleteMultipartUpload with If-None-Match: * answers 412 over a taken key and keeps the upload for its abort', async () => {
    await complete('mpu/dump.bin', await upload('mpu/dump.bin', 'owner'));
    const late = await upload('mpu/dump.bin', 'late');
    await preconditionFailed(complete('mpu/dump.bin', late));
    expect(await read('mpu/dump.bin')).toBe('owner');
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'mpu/dump.bin', UploadId: late.UploadId }),
    );
    expect(await readdir(path.join(directory, BUCKET, '._S3rver_uploads')).catch(() => [])).toEqual([]);
  });

  it('of racing create-only writes exactly one wins, PutObject and multipart alike', async () => {
    const bodies = ['a', 'b', 'c', 'd', 'e', 'f'];
    const uploads = await Promise.all(bodies.slice(3).map((body) => upload('race/key', body)));
    const results = await Promise.allSettled([
      ...bodies.slice(0, 3).map((body) => put('race/key', body)),
      ...uploads.map((started) => complete('race/key', started)),
    ]);
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [bodies[i]] : []));
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') expect((result.reason as Error).name).toBe('PreconditionFailed');
    }
    expect(await read('race/key')).toBe(won[0]);
  });

  it('answers another If-None-Match value with 501 NotImplemented, as S3 does, and writes nothing', async () => {
    const error = await s3
      .send(new PutObjectCommand({ Bucket: BUCKET, Key: 'other/key', Body: 'x', IfNoneMatch: '"abc"' }))
      .catch((e: unknown) => e);
    expect((error as S3ServiceException).name).toBe('NotImplemented');
    await expect(read('other/key')).rejects.toMatchObject({ name: 'NoSuchKey' });
  });
});

describe('replace-if-unchanged writes on the local S3 server', () => {
  const etagOf = async (Key: string) => (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).ETag!;
  const putIfMatch = (Key: string, body: string, IfMatch: string) =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: body, IfMatch }));

  it('PutObject with If-Match replaces the object while it has that ETag, and answers 412 once it changed', async () => {
    await put('match/manifest.json', 'v1', false);
    const first = await etagOf('match/manifest.json');
    await putIfMatch('match/manifest.json', 'v2', first);
    expect(await read('match/manifest.json')).toBe('v2');
    await preconditionFailed(putIfMatch('match/manifest.json', 'stale', first));
    expect(await read('match/manifest.json')).toBe('v2');
    // A multipart object's ETag ("<md5 of md5s>-<parts>") is matched as GetObject gives it.
    await complete('match/multi.bin', await upload('match/multi.bin', 'parts'), false);
    await putIfMatch('match/multi.bin', 'replaced', await etagOf('match/multi.bin'));
    expect(await read('match/multi.bin')).toBe('replaced');
  });

  it('answers If-Match on a missing key with 404 NoSuchKey and writes nothing', async () => {
    const error = await putIfMatch('match/absent.json', 'x', '"0123456789abcdef0123456789abcdef"').catch(
      (e: unknown) => e,
    );
    expect((error as S3ServiceException).name).toBe('NoSuchKey');
    await expect(read('match/absent.json')).rejects.toMatchObject({ name: 'NoSuchKey' });
  });

  it('of racing If-Match writes of one version exactly one wins, also against an unconditional write', async () => {
    await put('match/race.json', 'v0', false);
    const etag = await etagOf('match/race.json');
    const bodies = ['a', 'b', 'c', 'd'];
    const results = await Promise.allSettled(bodies.map((body) => putIfMatch('match/race.json', body, etag)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [bodies[i]] : []));
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') expect((result.reason as Error).name).toBe('PreconditionFailed');
    }
    expect(await read('match/race.json')).toBe(won[0]);
    const before = await etagOf('match/race.json');
    await put('match/race.json', 'unconditional', false);
    await preconditionFailed(putIfMatch('match/race.json', 'late', before));
    expect(await read('match/race.json')).toBe('unconditional');
  });

  it('answers If-Match on CompleteMultipartUpload with 501 NotImplemented and leaves the object', async () => {
    await put('match/mpu.bin', 'kept', false);
    const started = await upload('match/mpu.bin', 'new');
    const error = await s3
      .send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'match/mpu.bin',
          UploadId: started.UploadId,
          MultipartUpload: { Parts: started.parts },
          IfMatch: await etagOf('match/mpu.bin'),
        }),
      )
      .catch((e: unknown) => e);
    expect((error as S3ServiceException).name).toBe('NotImplemented');
    expect(await read('match/mpu.bin')).toBe('kept');
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'match/mpu.bin', UploadId: started.UploadId }),
    );
  });
});
