import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PART_SIZE,
  LARGE_PART_SIZE,
  partSizeFor,
  S3ObjectStore,
  translateS3Error,
} from '../../functions/adapters/s3-object-store.js';
import {
  ConfigurationError,
  KeyUnavailableError,
  ObjectChangedError,
  ObjectExistsError,
  ObjectNotFoundError,
  TransientError,
} from '../../functions/core/errors.js';

function serviceError(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

function setup(options: Partial<ConstructorParameters<typeof S3ObjectStore>[0]> = {}) {
  const client = new S3Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
  });
  const mock = mockClient(client);
  const store = new S3ObjectStore({ client, bucket: 'backups', region: 'eu-west-1', ...options });
  return { mock, store };
}

describe('S3ObjectStore writes', () => {
  it('writes with SSE-KMS, a bucket key, Object Lock and a SHA-256 checksum on AWS', async () => {
    const { mock, store } = setup({
      sse: { kmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k' },
      objectLock: true,
      objectLockMode: 'COMPLIANCE',
      clock: { now: () => new Date('2026-01-01T00:00:00Z') },
    });
    mock.on(PutObjectCommand).resolves({});
    const retainUntil = new Date('2026-02-01T00:00:00Z');

    await store.putJson('kc/manifest.json', { a: 1 }, { retainUntil });

    const input = mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      Bucket: 'backups',
      Key: 'kc/manifest.json',
      ContentType: 'application/json',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'arn:aws:kms:eu-west-1:1:key/k',
      BucketKeyEnabled: true,
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: retainUntil,
      ChecksumAlgorithm: 'SHA256',
    });
    expect(JSON.parse(String(input.Body))).toEqual({ a: 1 });
  });

  it('sends no retain-until that has passed, which S3 refuses: the bucket default retention applies', async () => {
    // A backup kept past its retain-until (retention paused while a target fails) and verified again.
    const { mock, store } = setup({
      sse: { kmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k' },
      objectLock: true,
      clock: { now: () => new Date('2026-03-01T00:00:00Z') },
    });
    mock.on(PutObjectCommand).resolves({});

    await store.putJson('kc/manifest.json', { a: 1 }, { retainUntil: new Date('2026-02-01T00:00:00Z') });

    const input = mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input.ObjectLockMode).toBeUndefined();
    expect(input.ObjectLockRetainUntilDate).toBeUndefined();
    expect(input).toMatchObject({ ServerSideEncryption: 'aws:kms', ChecksumAlgorithm: 'SHA256' });
  });

  it('sends no checksum algorithm and no Object Lock to a local endpoint without them', async () => {
    const { mock, store } = setup({ endpoint: 'http://127.0.0.1:4568' });
    mock.on(PutObjectCommand).resolves({});
    await store.putJson('k', {}, { retainUntil: new Date() });
    const input = mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input.ChecksumAlgorithm).toBeUndefined();
    expect(input.ObjectLockMode).toBeUndefined();
    expect(input.ServerSideEncryption).toBeUndefined();
  });

  it('uploads a stream larger than a part as a multipart upload and completes it', async () => {
    const { mock, store } = setup({ partSize: 5 * 1024 * 1024 });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).resolves({ ETag: '"e"' });
    mock.on(CompleteMultipartUploadCommand).resolves({});

    await store.putStream(
      'big',
      Readable.from([Buffer.alloc(6 * 1024 * 1024), Buffer.alloc(6 * 1024 * 1024)]),
    );

    expect(mock.commandCalls(UploadPartCommand)).toHaveLength(3);
    expect(mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(1);
    expect(mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0);
  });

  it('by default sends 5 MiB parts: the smallest S3 takes, so the pool of part buffers is small', async () => {
    const { mock, store } = setup({});
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).resolves({ ETag: '"e"' });
    mock.on(CompleteMultipartUploadCommand).resolves({});

    await store.putStream('big', Readable.from([Buffer.alloc(11 * 1024 * 1024)]));

    const sizes = mock.commandCalls(UploadPartCommand).map((call) => call.args[0].input.ContentLength);
    expect(sizes).toEqual([5 * 1024 * 1024, 5 * 1024 * 1024, 1024 * 1024]);
  });

  it('grows the parts to 16 MiB after part 4,000, so 10,000 parts hold more than 100 GiB', () => {
    expect(partSizeFor(1)).toBe(DEFAULT_PART_SIZE);
    expect(partSizeFor(4000)).toBe(5 * 1024 * 1024);
    expect(partSizeFor(4001)).toBe(LARGE_PART_SIZE);
    let total = 0;
    for (let part = 1; part <= 10_000; part += 1) total += partSizeFor(part);
    expect(total / 1024 ** 3).toBeGreaterThan(110);
  });

  it('stores a body shorter than one part with a single PutObject', async () => {
    const { mock, store } = setup({ partSize: 5 * 1024 * 1024 });
    mock.on(PutObjectCommand).resolves({});

    const result = await store.putStream('small', Readable.from([Buffer.from('abc'), Buffer.from('def')]));

    expect(result.bytes).toBe(6);
    expect(mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
    const input = mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(Buffer.from(input.Body as Uint8Array).toString()).toBe('abcdef');
  });

  it('sends parts of exactly the part size, numbered in order, and lists them in order on completion', async () => {
    const { mock, store } = setup({ partSize: 5 * 1024 * 1024, queueSize: 2 });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).callsFake(async (input: { PartNumber: number }) => {
      // later parts finish first: completion must still list them in order
      await new Promise((resolve) => setTimeout(resolve, 30 - input.PartNumber * 5));
      return { ETag: `"e${input.PartNumber}"` };
    });
    mock.on(CompleteMultipartUploadCommand).resolves({});
    const data = Buffer.alloc(12 * 1024 * 1024 + 7, 1);

    const result = await store.putStream(
      'big',
      Readable.from([data.subarray(0, 3_000_000), data.subarray(3_000_000)]),
    );

    expect(result.bytes).toBe(data.length);
    const sizes = mock.commandCalls(UploadPartCommand).map((c) => c.args[0].input.ContentLength);
    expect(sizes).toEqual([5 * 1024 * 1024, 5 * 1024 * 1024, 2 * 1024 * 1024 + 7]);
    const completed = mock.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input;
    expect(completed.MultipartUpload?.Parts?.map((p) => p.ETag)).toEqual(['"e1"', '"e2"', '"e3"']);
    expect(completed.UploadId).toBe('u1');
  });

  it('aborts the multipart upload and rethrows the stream error when the body fails', async () => {
    const { mock, store } = setup({ partSize: 5 * 1024 * 1024 });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).resolves({ ETag: '"e"' });
    mock.on(AbortMultipartUploadCommand).resolves({});
    const broken = new Error('pg_dump died');
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent++ < 3) this.push(Buffer.alloc(4 * 1024 * 1024));
        else this.destroy(broken);
      },
    });

    await expect(store.putStream('big', body)).rejects.toBe(broken);

    expect(mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
    expect(mock.commandCalls(AbortMultipartUploadCommand)[0]!.args[0].input.UploadId).toBe('u1');
    expect(mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('aborts the upload and says ObjectExistsError when a create-only completion finds the key taken', async () => {
    const { mock, store } = setup({ partSize: 5 * 1024 * 1024 });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).resolves({ ETag: '"e"' });
    mock.on(CompleteMultipartUploadCommand).rejects(serviceError('PreconditionFailed', 412));
    mock.on(AbortMultipartUploadCommand).resolves({});

    await expect(
      store.putStream('taken', Readable.from([Buffer.alloc(6 * 1024 * 1024)]), { createOnly: true }),
    ).rejects.toBeInstanceOf(ObjectExistsError);

    expect(mock.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.IfNoneMatch).toBe('*');
    expect(mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
  });

  it('sends If-Match with the ETag it read, and reports its 412 as ObjectChangedError, not as a taken key', async () => {
    const { mock, store } = setup({ partSize: 5 * 1024 * 1024 });
    mock.on(GetObjectCommand).resolves({
      Body: Readable.from([Buffer.from('{"v":1}')]),
      ETag: '"0123456789abcdef0123456789abcdef"',
    } as never);
    mock.on(PutObjectCommand).rejects(serviceError('PreconditionFailed', 412));

    const read = await store.getJsonWithEtag('manifest.json');
    expect(read).toEqual({ value: { v: 1 }, etag: '"0123456789abcdef0123456789abcdef"' });
    const failure = await store
      .putJson('manifest.json', { v: 2 }, { ifMatch: read.etag })
      .catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ObjectChangedError);
    expect((failure as Error).message).toMatch(/changed since it was read/);
    const input = mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input.IfMatch).toBe('"0123456789abcdef0123456789abcdef"');
    expect(input.IfNoneMatch).toBeUndefined();
  });

  it('fails the body stream when the upload fails, so the producer does not wait forever', async () => {
    const { mock, store } = setup({ partSize: 5 * 1024 * 1024 });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).rejects(serviceError('SlowDown', 503));
    mock.on(AbortMultipartUploadCommand).resolves({});
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(1024 * 1024));
      },
    });

    const failure = await store.putStream('big', body).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(TransientError);
    expect(body.destroyed).toBe(true);
  });
});

describe('S3ObjectStore on the wire (the real SDK against a loopback server that records requests)', () => {
  interface Recorded {
    method: string;
    url: string;
    headers: IncomingHttpHeaders;
    body: Buffer;
  }

  async function recordingServer() {
    const requests: Recorded[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        res.setHeader('content-type', 'application/xml');
        if (req.method === 'POST' && req.url?.includes('uploads')) {
          res.end(
            '<InitiateMultipartUploadResult><Bucket>backups</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>',
          );
        } else if (req.method === 'POST') {
          res.end('<CompleteMultipartUploadResult><ETag>"x-2"</ETag></CompleteMultipartUploadResult>');
        } else {
          res.setHeader('etag', `"${createHash('md5').update(body).digest('hex')}"`);
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = new S3Client({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    return {
      requests,
      client,
      close: async () => {
        client.destroy();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  /** Runs `write` against a store whose client talks to a fresh recorder; answers the requests it received. */
  async function recordWrites(
    options: Partial<ConstructorParameters<typeof S3ObjectStore>[0]>,
    write: (store: S3ObjectStore) => Promise<unknown>,
  ): Promise<Recorded[]> {
    const recorder = await recordingServer();
    try {
      await write(
        new S3ObjectStore({ client: recorder.client, bucket: 'backups', region: 'eu-west-1', ...options }),
      );
      return recorder.requests.filter((r) => r.method === 'PUT');
    } finally {
      await recorder.close();
    }
  }

  it('sends each part once-hashed: its own SHA-256 checksum for S3 to check, an unsigned payload, the bytes as they were', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 1000);
    // No endpoint option: the store behaves as on AWS (checksums on), only the client points at the recorder.
    const parts = await recordWrites({ partSize: 5 * 1024 * 1024 }, (store) =>
      store.putStream('k', Readable.from([data])),
    );

    expect(parts).toHaveLength(2);
    const number = (r: Recorded) => Number(new URL(r.url, 'http://x').searchParams.get('partNumber'));
    parts.sort((a, b) => number(a) - number(b));
    expect(Buffer.concat(parts.map((p) => p.body)).equals(data)).toBe(true);
    for (const part of parts) {
      expect(part.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(part.headers['x-amz-checksum-sha256']).toBe(
        createHash('sha256').update(part.body).digest('base64'),
      );
      // Signed all the same: the signature covers the header that says the payload is unsigned.
      expect(part.headers.authorization).toMatch(/x-amz-content-sha256/);
    }
  });

  it('sends a body shorter than a part as one PutObject with its SHA-256 checksum and an unsigned payload', async () => {
    const puts = await recordWrites({}, (store) =>
      store.putStream('k', Readable.from([Buffer.from('a whole '), Buffer.from('small dump')])),
    );

    expect(puts).toHaveLength(1);
    expect(puts[0]?.url).not.toMatch(/partNumber/);
    expect(puts[0]?.body.toString()).toBe('a whole small dump');
    expect(puts[0]?.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(puts[0]?.headers['x-amz-checksum-sha256']).toBe(
      createHash('sha256').update('a whole small dump').digest('base64'),
    );
  });

  it('asks for a create-only write with If-None-Match: * on PutObject and on the multipart completion, nowhere else', async () => {
    const recorder = await recordingServer();
    try {
      const store = new S3ObjectStore({
        client: recorder.client,
        bucket: 'backups',
        region: 'eu-west-1',
        partSize: 5 * 1024 * 1024,
      });
      await store.putStream('small', Readable.from([Buffer.from('x')]), { createOnly: true });
      await store.putJson('claim.json', { a: 1 }, { createOnly: true });
      await store.putStream('big', Readable.from([randomBytes(5 * 1024 * 1024 + 1)]), { createOnly: true });
      await store.putJson('manifest.json', { a: 2 });

      const conditional = recorder.requests.filter((r) => r.headers['if-none-match'] !== undefined);
      expect(conditional.map((r) => [r.method, new URL(r.url, 'http://x').pathname])).toEqual([
        ['PUT', '/backups/small'],
        ['PUT', '/backups/claim.json'],
        ['POST', '/backups/big'],
      ]);
      expect(conditional.every((r) => r.headers['if-none-match'] === '*')).toBe(true);
      expect(conditional[2]?.url).toMatch(/uploadId=u1/);
    } finally {
      await recorder.close();
    }
  });

  it('sends no checksum to a local endpoint, and still an unsigned payload', async () => {
    const [put] = await recordWrites({ endpoint: 'http://127.0.0.1:1' }, (store) =>
      store.putStream('k', Readable.from([Buffer.from('small body')])),
    );

    expect(put?.body.toString()).toBe('small body');
    expect(put?.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(put?.headers['x-amz-checksum-sha256']).toBeUndefined();
  });
});

describe('S3ObjectStore reads', () => {
  it('throws ObjectNotFoundError for a missing object and answers undefined to head', async () => {
    const { mock, store } = setup();
    mock.on(GetObjectCommand).rejects(serviceError('NoSuchKey', 404));
    mock.on(HeadObjectCommand).rejects(serviceError('NotFound', 404));
    await expect(store.getStream('nope')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(store.head('nope')).resolves.toBeUndefined();
  });

  it('lists every page of a prefix', async () => {
    const { mock, store } = setup();
    const when = new Date('2026-01-01T00:00:00Z');
    mock
      .on(ListObjectsV2Command, { ContinuationToken: undefined })
      .resolves({
        Contents: [{ Key: 'a', Size: 1, LastModified: when }],
        IsTruncated: true,
        NextContinuationToken: 't',
      })
      .on(ListObjectsV2Command, { ContinuationToken: 't' })
      .resolves({ Contents: [{ Key: 'b', Size: 2, LastModified: when }], IsTruncated: false });
    const keys: string[] = [];
    for await (const object of store.list('kc/')) keys.push(object.key);
    expect(keys).toEqual(['a', 'b']);
  });

  it('deletes in batches of 1000 and fails on a refused key', async () => {
    const { mock, store } = setup();
    mock.on(DeleteObjectsCommand).resolves({});
    await store.deleteObjects(Array.from({ length: 2500 }, (_, i) => `k${i}`));
    expect(
      mock.commandCalls(DeleteObjectsCommand).map((c) => c.args[0].input.Delete?.Objects?.length),
    ).toEqual([1000, 1000, 500]);

    mock
      .on(DeleteObjectsCommand)
      .resolves({ Errors: [{ Key: 'k1', Code: 'AccessDenied', Message: 'locked' }] });
    await expect(store.deleteObjects(['k1'])).rejects.toBeInstanceOf(ConfigurationError);
  });
});

describe('translateS3Error', () => {
  it.each([
    ['SlowDown', 503, TransientError],
    ['InternalError', 500, TransientError],
    ['ThrottlingException', 400, TransientError],
    ['AccessDenied', 403, ConfigurationError],
    ['NoSuchBucket', 404, ConfigurationError],
    ['NoSuchKey', 404, ObjectNotFoundError],
    ['KMS.DisabledException', 400, KeyUnavailableError],
    ['PreconditionFailed', 412, ObjectExistsError],
    ['ConditionalRequestConflict', 409, TransientError],
  ])('maps %s (HTTP %i) to %o', (name, status, kind) => {
    const translated = translateS3Error(serviceError(name, status), 'read of k');
    expect(translated).toBeInstanceOf(kind);
    expect((translated as Error).message).toContain('read of k');
  });

  it('keeps the SDK error as the cause and adds a hint to fatal ones', () => {
    const original = serviceError('AccessDenied', 403);
    const translated = translateS3Error(original, 'upload') as ConfigurationError;
    expect(translated.cause).toBe(original);
    expect(translated.hint).toMatch(/permission/);
  });

  it('returns an unknown 4xx unchanged', () => {
    const original = serviceError('InvalidArgument', 400);
    expect(translateS3Error(original, 'x')).toBe(original);
  });
});
