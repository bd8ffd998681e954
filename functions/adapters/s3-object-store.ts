// ObjectStore over the S3 API: AWS S3 in production, s3rver locally (only the endpoint differs).
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  type ObjectLockMode,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  ConfigurationError,
  isKeycloakBackupError,
  KeyUnavailableError,
  ObjectChangedError,
  ObjectExistsError,
  ObjectNotFoundError,
  TransientError,
} from '../core/errors.js';
import {
  type Clock,
  type ObjectStore,
  type PutOptions,
  type StoredObject,
  systemClock,
} from '../core/ports.js';
import { awsErrorName, classifyAwsError, describeAwsError, httpStatusOf } from './aws/errors.js';
import { S3_HTTP_TIMEOUTS } from './aws/http-timeouts.js';

/**
 * 5 MiB parts (S3's smallest) for the first 4,000 parts, 19.5 GiB of stored dump, then 16 MiB: an upload holds
 * (3 + 1) × 5 = 20 MiB of part buffers instead of 32 MiB at 8 MiB parts (issue 16: dump peak RSS ≤ 160 MiB; it was
 * 149-161 MiB at medium and 162-170 MiB at large with 8 MiB parts, 150.6-157.6 MiB in four medium dumps with 5 MiB
 * parts, bench/RESULTS.md tenth round), and 10,000 parts still cover 113 GiB of stored dump (8 MiB parts: 78 GiB).
 * Memory grows only past 19.5 GiB stored, a database of about 120 GiB.
 */
export const DEFAULT_PART_SIZE = 5 * 1024 * 1024;
export const LARGE_PART_SIZE = 16 * 1024 * 1024;
export const LARGE_PARTS_FROM = 4001;

/** The size of part `partNumber` (1-based) of a streamed upload, unless the store was given a fixed one. */
export function partSizeFor(partNumber: number): number {
  return partNumber < LARGE_PARTS_FROM ? DEFAULT_PART_SIZE : LARGE_PART_SIZE;
}

/** Parts in flight; an upload holds at most (queueSize + 1) × partSize of part buffers. */
export const DEFAULT_QUEUE_SIZE = 3;
const DELETE_BATCH = 1000;

export interface S3ObjectStoreOptions {
  client?: S3Client;
  bucket: string;
  region: string;
  /** An S3-compatible endpoint (local s3rver). Unset on AWS. */
  endpoint?: string;
  /** SSE-KMS under this key (AWS). */
  sse?: { kmsKeyId: string };
  /** The bucket has S3 Object Lock: write objects with their retain-until. */
  objectLock?: boolean;
  objectLockMode?: ObjectLockMode;
  partSize?: number;
  queueSize?: number;
  /** Tells a retain-until that has passed (tests pass a fixed one). */
  clock?: Clock;
  /** Connection and idle timeouts of the client this store creates (default S3_HTTP_TIMEOUTS). */
  timeouts?: { connectionTimeout: number; socketTimeout: number };
}

export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly region: string;
  private readonly client: S3Client;
  private readonly local: boolean;
  private readonly options: S3ObjectStoreOptions;

  constructor(options: S3ObjectStoreOptions) {
    this.options = options;
    this.bucket = options.bucket;
    this.region = options.region;
    this.local = options.endpoint !== undefined;
    this.client = options.client ?? new S3Client(clientConfig(options));
  }

  /**
   * Multipart upload with a fixed pool of part buffers: memory stays at (queueSize + 1) × the part size whatever
   * the size of the object (20 MiB, 64 MiB once the parts grow past part 4,000). (lib-storage's Upload
   * concatenates a fresh part per part, and the churn of 16 MiB buffers kept the process about 100 MB above that.)
   * A body shorter than one part is a single PutObject.
   * On any failure the multipart upload is aborted, so no parts are left behind, and the body is destroyed,
   * so its producer stops.
   */
  async putStream(key: string, body: Readable, options: PutOptions = {}): Promise<{ bytes: number }> {
    const sizeOf = (partNumber: number) => this.options.partSize ?? partSizeFor(partNumber);
    const queueSize = this.options.queueSize ?? DEFAULT_QUEUE_SIZE;
    const params = this.writeParams(key, options);
    const condition = createOnlyCondition(options);
    const free: Buffer[] = [];
    // Buffers of the smaller parts are dropped once the parts grow (the garbage collector takes them).
    const take = (size: number) => {
      const buffer = free.pop();
      return buffer !== undefined && buffer.length === size ? buffer : Buffer.allocUnsafeSlow(size);
    };
    const inFlight = new Set<Promise<void>>();
    const parts: CompletedPart[] = [];
    let created: Promise<string> | undefined;
    let uploadId: string | undefined;
    let failure: { error: unknown } | undefined;
    let total = 0;

    const createUpload = () => {
      created ??= this.client.send(new CreateMultipartUploadCommand({ ...params })).then((response) => {
        if (!response.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
        uploadId = response.UploadId;
        return uploadId;
      });
      return created;
    };
    const launch = (buffer: Buffer, length: number, partNumber: number) => {
      const sent = (async () => {
        const id = await createUpload();
        const body = buffer.subarray(0, length);
        const response = await this.client.send(
          this.unsignedPayload(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: id,
              PartNumber: partNumber,
              Body: body,
              ContentLength: length,
              ...this.partChecksum(body, params),
            }),
          ),
        );
        parts.push({ PartNumber: partNumber, ETag: response.ETag, ChecksumSHA256: response.ChecksumSHA256 });
        // The SDK is done with the bytes once send() settles (its retries happen inside it).
        free.push(buffer);
      })().catch((error: unknown) => {
        failure ??= { error };
      });
      const tracked = sent.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    };

    let partNumber = 0;
    let current = take(sizeOf(1));
    let filled = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        total += chunk.length;
        let offset = 0;
        while (offset < chunk.length) {
          const copied = chunk.copy(current, filled, offset);
          filled += copied;
          offset += copied;
          if (filled < current.length) continue;
          while (inFlight.size >= queueSize) await Promise.race(inFlight);
          if (failure) throw failure.error;
          partNumber += 1;
          launch(current, filled, partNumber);
          current = take(sizeOf(partNumber + 1));
          filled = 0;
        }
      }
      if (partNumber === 0) {
        const body = current.subarray(0, filled);
        await this.client.send(
          this.unsignedPayload(
            new PutObjectCommand({
              ...params,
              ...condition,
              Body: body,
              ContentLength: filled,
              ...this.partChecksum(body, params),
            }),
          ),
        );
        return { bytes: total };
      }
      if (filled > 0) {
        partNumber += 1;
        launch(current, filled, partNumber);
      }
      await Promise.all(inFlight);
      if (failure) throw failure.error;
      parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          ...condition,
        }),
      );
      return { bytes: total };
    } catch (error) {
      if (!body.destroyed) body.destroy(error as Error);
      await Promise.all(inFlight);
      await created?.catch(() => undefined);
      if (uploadId !== undefined) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
          .catch((abortError: unknown) => {
            // The upload's own failure stays in charge; S3's lifecycle rule for incomplete uploads is the backstop.
            process.emitWarning(
              `multipart upload ${uploadId} of ${key} was not aborted: ${describeAwsError(abortError)}`,
            );
          });
      }
      throw translateS3Error(error, `upload of ${key} to ${this.bucket}`);
    }
  }

  async putJson(key: string, value: unknown, options: PutOptions = {}): Promise<void> {
    const body = Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
    try {
      await this.client.send(
        new PutObjectCommand({
          ...this.writeParams(key, { contentType: 'application/json', ...options }),
          ...createOnlyCondition(options),
          ...(options.ifMatch !== undefined ? { IfMatch: options.ifMatch } : {}),
          Body: body,
          ContentLength: body.length,
        }),
      );
    } catch (error) {
      if (options.ifMatch !== undefined && isPreconditionFailed(error)) {
        throw new ObjectChangedError(
          `write of ${key} to ${this.bucket} refused: it changed since it was read`,
          {
            cause: error,
            hint: 'another step wrote it meanwhile; read it again and reapply the change',
          },
        );
      }
      throw translateS3Error(error, `write of ${key} to ${this.bucket}`);
    }
  }

  async getStream(key: string): Promise<Readable> {
    return (await this.getObject(key)).body;
  }

  /** GetObject: the body and its ETag; ObjectNotFoundError and the rest named as translateS3Error names them. */
  private async getObject(key: string): Promise<{ body: Readable; etag: string }> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!response.Body) throw new ObjectNotFoundError(`object ${key} in ${this.bucket} has no body`);
      return { body: response.Body as Readable, etag: response.ETag ?? '' };
    } catch (error) {
      throw translateS3Error(error, `read of ${key} from ${this.bucket}`);
    }
  }

  async getJson(key: string): Promise<unknown> {
    return (await this.getJsonWithEtag(key)).value;
  }

  async getJsonWithEtag(key: string): Promise<{ value: unknown; etag: string }> {
    const { body, etag } = await this.getObject(key);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of body) chunks.push(chunk as Buffer);
    } catch (error) {
      throw translateS3Error(error, `read of ${key} from ${this.bucket}`);
    }
    return { value: parseJson(Buffer.concat(chunks), key, this.bucket), etag };
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: response.ContentLength ?? 0, lastModified: response.LastModified ?? new Date(0) };
    } catch (error) {
      const translated = translateS3Error(error, `head of ${key} in ${this.bucket}`);
      if (translated instanceof ObjectNotFoundError) return undefined;
      throw translated;
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    let continuationToken: string | undefined;
    do {
      let response: ListObjectsV2CommandOutput;
      try {
        response = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ContinuationToken: continuationToken,
          }),
        );
      } catch (error) {
        throw translateS3Error(error, `list of ${prefix} in ${this.bucket}`);
      }
      for (const object of response.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield {
          key: object.Key,
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        };
      }
      continuationToken = response.IsTruncated ? response.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  async deleteObjects(keys: readonly string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      let errors: { Key?: string; Code?: string; Message?: string }[] | undefined;
      try {
        const response = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        errors = response.Errors;
      } catch (error) {
        throw translateS3Error(error, `delete of ${batch.length} objects in ${this.bucket}`);
      }
      const first = errors?.[0];
      if (first) {
        const failure = Object.assign(new Error(first.Message ?? 'delete refused'), {
          name: first.Code ?? 'DeleteFailed',
        });
        throw translateS3Error(
          failure,
          `delete of ${errors?.length} objects in ${this.bucket} (first: ${first.Key})`,
        );
      }
    }
  }

  /**
   * The SHA-256 of a part, computed here in one pass, for S3 to check (where writes carry a checksum). Left to
   * the SDK, it would hash the part once for this header and once more to sign the payload.
   */
  private partChecksum(body: Buffer, params: PutObjectCommandInput): { ChecksumSHA256?: string } {
    if (params.ChecksumAlgorithm !== 'SHA256') return {};
    return { ChecksumSHA256: createHash('sha256').update(body).digest('base64') };
  }

  /**
   * Signs a part's request without hashing its payload (x-amz-content-sha256: UNSIGNED-PAYLOAD): the bytes are
   * already covered by the part checksum S3 verifies (on AWS, over TLS), by the SHA-256 of the whole object
   * that the manifest records and every verification re-reads, and by the authenticated encryption; a
   * signature hash would be a third pass over every byte on the dump's critical path.
   */
  private unsignedPayload<C extends UploadPartCommand | PutObjectCommand>(command: C): C {
    // Typed as one of the two: the middleware touches only the HTTP request, which both have.
    (command as UploadPartCommand).middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'keycloakBackupUnsignedPayload' },
    );
    return command;
  }

  /** Parameters every write carries: encryption at rest, Object Lock, integrity checksum. */
  private writeParams(key: string, options: PutOptions): PutObjectCommandInput {
    const params: PutObjectCommandInput = { Bucket: this.bucket, Key: key };
    if (options.contentType) params.ContentType = options.contentType;
    if (this.options.sse) {
      params.ServerSideEncryption = 'aws:kms';
      params.SSEKMSKeyId = this.options.sse.kmsKeyId;
      params.BucketKeyEnabled = true;
    }
    // S3 refuses a retain-until in the past (a backup kept past its date while retention paused, re-verified):
    // such an object is written without one and gets the bucket's default retention.
    const now = (this.options.clock ?? systemClock).now();
    if (this.options.objectLock && options.retainUntil && options.retainUntil.getTime() > now.getTime()) {
      params.ObjectLockMode = this.options.objectLockMode ?? 'GOVERNANCE';
      params.ObjectLockRetainUntilDate = options.retainUntil;
    }
    // S3 checks each part against it (Object Lock writes need one); s3rver would store the framing instead.
    if (!this.local) params.ChecksumAlgorithm = 'SHA256';
    return params;
  }
}

function parseJson(bytes: Buffer, key: string, bucket: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (error) {
    // A caller validating a manifest turns this into ManifestInvalidError; here it is just unreadable.
    throw new SyntaxError(`object ${key} in ${bucket} is not JSON: ${(error as Error).message}`);
  }
}

/** A conditional write's 412: the condition (If-None-Match or If-Match) did not hold. */
function isPreconditionFailed(error: unknown): boolean {
  return awsErrorName(error) === 'PreconditionFailed' || httpStatusOf(error) === 412;
}

/** S3's conditional write: the object is created only if the key is free, else 412 PreconditionFailed. */
function createOnlyCondition(options: PutOptions): { IfNoneMatch?: string } {
  return options.createOnly ? { IfNoneMatch: '*' } : {};
}

function clientConfig(options: S3ObjectStoreOptions): S3ClientConfig {
  const requestHandler = options.timeouts ?? S3_HTTP_TIMEOUTS;
  if (options.endpoint === undefined) return { region: options.region, requestHandler };
  return {
    region: options.region,
    requestHandler,
    endpoint: options.endpoint,
    forcePathStyle: true,
    // Without these the SDK sends aws-chunked bodies with trailing checksums, which s3rver stores verbatim.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // s3rver's fixed test account; nothing secret.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  };
}

/** Maps an S3 SDK error onto the catalogue; `what` names the operation for the message. */
export function translateS3Error(error: unknown, what: string): unknown {
  if (isKeycloakBackupError(error)) return error;
  const name = awsErrorName(error);
  const status = httpStatusOf(error);
  const detail = `${what} failed: ${describeAwsError(error)}`;
  if (isPreconditionFailed(error)) {
    return new ObjectExistsError(`${what} refused: the key exists and the write was create-only`, {
      cause: error,
      hint: 'the object there was written by someone else and is left as it is',
    });
  }
  // A conditional write that raced another write or delete of the key: S3 says to start the upload again.
  if (name === 'ConditionalRequestConflict' || name === 'OperationAborted') {
    return new TransientError(detail, { cause: error });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
    return new ObjectNotFoundError(detail, { cause: error });
  }
  if (name.startsWith('KMS.') || name === 'KMSKeyNotAccessibleFault') {
    return new KeyUnavailableError(detail, {
      cause: error,
      hint: 'the bucket encryption key is missing, disabled or not usable by this role',
    });
  }
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || status === 403) {
    return new ConfigurationError(detail, {
      cause: error,
      hint: 'grant this role the S3 permissions on the bucket (and kms:GenerateDataKey and kms:Decrypt on its key)',
    });
  }
  if (name === 'NoSuchBucket') {
    return new ConfigurationError(detail, {
      cause: error,
      hint: 'check the bucket name and region settings',
    });
  }
  return classifyAwsError(error, what);
}
