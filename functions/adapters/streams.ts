// Small pass-through stream stages of the data path: count and hash, check a header, hold the end for a verdict.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback, Writable } from 'node:stream';
import {
  createZstdCompress,
  createZstdDecompress,
  type ZstdOptions,
  constants as zlibConstants,
} from 'node:zlib';
import { ChecksumMismatchError, DumpFailedError, RestoreFailedError } from '../core/errors.js';

/** Larger buffers between stages mean fewer wake-ups per megabyte; 1 MiB matches the encryption frame. */
export const STAGE_HIGH_WATER_MARK = 1024 * 1024;

/**
 * What a stage of the read path buffers before it pushes back. The read path carries the socket's 16-64 KiB
 * chunks, and at 1 MiB each of its stages held 16 of them. Those buffers outlived young-generation collections,
 * and V8 then ran a full mark-compact every 40-60 ms in 5 of 12 fresh verification processes; at 64 KiB in none
 * of 12, and a first pass faulted in 9,500-11,000 pages instead of 13,400-20,400. The dump keeps 1 MiB: with
 * 64 KiB there too, two medium runs gave dump ratios of 1.107 and 1.152 against 1.087 and 1.082 (bench/RESULTS.md).
 */
export const READ_HIGH_WATER_MARK = 64 * 1024;

export interface DigestStageOptions {
  /** When set, the stage fails at the end of the stream unless the bytes hash to this (lower-case hex). */
  expectSha256?: string;
  /** Names the object in a ChecksumMismatchError. */
  objectKey?: string;
  /** false: count only (a stage whose digest nobody reads should not spend a SHA-256 pass). */
  hash?: boolean;
  /** Called with the bytes seen so far, at most once per `progressIntervalMs`. */
  onProgress?: (bytes: number) => void;
  progressIntervalMs?: number;
  /** Default STAGE_HIGH_WATER_MARK; the read path's stages use READ_HIGH_WATER_MARK. */
  highWaterMark?: number;
}

/**
 * Counts and SHA-256-hashes the bytes flowing through, passing each chunk on untouched (no copy).
 * Read `.bytes` and `.digestHex()` once the stream has finished.
 */
export class DigestStage extends Transform {
  bytes = 0;
  private readonly hash: Hash | undefined;
  private digest: string | undefined;
  private finished = false;
  private readonly options: DigestStageOptions;
  private nextProgressAt = 0;

  constructor(options: DigestStageOptions = {}) {
    super({ highWaterMark: options.highWaterMark ?? STAGE_HIGH_WATER_MARK });
    this.options = options;
    this.hash =
      options.hash === false && options.expectSha256 === undefined ? undefined : createHash('sha256');
  }

  /** True once every byte has been seen (and hashed). */
  get complete(): boolean {
    return this.finished;
  }

  /** The SHA-256 of everything that went through; only valid after the stream finished. */
  digestHex(): string {
    if (!this.hash) throw new Error('this stage only counts bytes');
    if (this.digest === undefined) throw new Error('digest read before the stream finished');
    return this.digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    const { onProgress } = this.options;
    if (onProgress) {
      const now = Date.now();
      if (now >= this.nextProgressAt) {
        this.nextProgressAt = now + (this.options.progressIntervalMs ?? 1000);
        onProgress(this.bytes);
      }
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.finished = true;
    this.options.onProgress?.(this.bytes);
    if (!this.hash) {
      callback();
      return;
    }
    this.digest = this.hash.digest('hex');
    const expected = this.options.expectSha256;
    if (expected !== undefined && expected.toLowerCase() !== this.digest) {
      callback(checksumMismatch(this.options.objectKey ?? '(stream)', expected, this.digest));
      return;
    }
    callback();
  }
}

export function checksumMismatch(key: string, expected: string, actual: string): ChecksumMismatchError {
  return new ChecksumMismatchError(`object ${key} has SHA-256 ${actual}, expected ${expected}`, {
    hint: 'the stored bytes changed after the backup was written: do not restore from it; use another backup',
  });
}

/**
 * Collects the first `n` bytes, hands them to `check` (which throws to fail the stream), then passes
 * everything on unchanged. A stream shorter than `n` bytes is checked with what there is at its end.
 */
export function peekHeader(
  n: number,
  check: (head: Buffer) => void,
  highWaterMark = STAGE_HIGH_WATER_MARK,
): Transform {
  const held: Buffer[] = [];
  let heldBytes = 0;
  let checked = false;
  const runCheck = (): Error | undefined => {
    checked = true;
    try {
      check(held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes));
      return undefined;
    } catch (error) {
      return error as Error;
    }
  };
  return new Transform({
    highWaterMark,
    transform(chunk: Buffer, _encoding, callback) {
      if (checked) {
        callback(null, chunk);
        return;
      }
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes < n) {
        callback();
        return;
      }
      const error = runCheck();
      if (error) {
        callback(error);
        return;
      }
      for (const part of held) this.push(part);
      held.length = 0;
      callback();
    },
    flush(callback) {
      if (!checked) {
        const error = runCheck();
        if (error) {
          callback(error);
          return;
        }
        for (const part of held) this.push(part);
      }
      callback();
    },
  });
}

/** Asserts a pg_dump custom-format archive: it starts with the magic 'PGDMP'. */
export function assertPgDumpHeader(head: Buffer): void {
  if (head.length < 5 || head.toString('latin1', 0, 5) !== 'PGDMP') {
    throw new DumpFailedError(
      head.length === 0
        ? 'pg_dump wrote nothing'
        : 'pg_dump output does not start with PGDMP: not a custom-format archive',
      { hint: 'check the pg_dump binary and its arguments; nothing was stored' },
    );
  }
}

/**
 * Passes bytes through but holds the end of the stream until `verdict` settles: a rejection fails the
 * stream instead of ending it, so a consumer (a multipart upload) never completes on a failed producer.
 */
export function holdEndUntil(verdict: () => Promise<unknown>): Transform {
  return new Transform({
    highWaterMark: STAGE_HIGH_WATER_MARK,
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
      verdict().then(
        () => callback(),
        (error: unknown) => callback(error as Error),
      );
    },
  });
}

/**
 * Gathers small chunks (64 KiB from a pipe or a socket) into chunks of `size` bytes: the encryption SDK's
 * streams cost a fixed amount per chunk, so whole frames go through them faster (the dump, before encrypting).
 * One allocation per `size` bytes; a chunk that already fills a whole target passes without a copy.
 * Not before the decryption, which holds a whole frame until its tag: there the 1 MiB buffers outlived
 * scavenges and V8 ran a full mark-compact every 40-60 ms (pg-restore.ts readStages).
 */
export function coalesce(size: number): Transform {
  let target: Buffer | undefined;
  let filled = 0;
  return new Transform({
    highWaterMark: size,
    transform(chunk: Buffer, _encoding, callback) {
      let offset = 0;
      if (filled === 0 && chunk.length >= size) {
        callback(null, chunk);
        return;
      }
      while (offset < chunk.length) {
        target ??= Buffer.allocUnsafeSlow(size);
        const copied = chunk.copy(target, filled, offset);
        filled += copied;
        offset += copied;
        if (filled === size) {
          this.push(target);
          target = undefined;
          filled = 0;
        }
      }
      callback();
    },
    flush(callback) {
      if (target && filled > 0) this.push(target.subarray(0, filled));
      target = undefined;
      callback();
    },
  });
}

/** A sink that throws bytes away (verification reads that only need the hash and the decryption). */
export function discard(): Writable {
  return new Writable({
    highWaterMark: STAGE_HIGH_WATER_MARK,
    write(_chunk, _encoding, callback) {
      callback();
    },
    writev(_chunks, callback) {
      callback();
    },
  });
}

/** The first four bytes of every zstd frame (RFC 8878): what the pipeline's compressed archive starts with. */
export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/**
 * zstd compression of the archive, in the libuv thread pool: the main thread hands each 1 MiB chunk over and
 * encrypts the previous output meanwhile, so on two cores pg_dump, the compression and the encryption overlap.
 * The frame carries its content checksum (XXH64), which `zstd -d` checks too, and has no known size up front.
 */
export function zstdCompressStage(level: number): Transform {
  return createZstdCompress(
    withHighWaterMark(STAGE_HIGH_WATER_MARK, {
      // One output buffer per MiB of compressed data, as the encryption's frames (coalesce after it gathers them).
      chunkSize: STAGE_HIGH_WATER_MARK,
      params: {
        [zlibConstants.ZSTD_c_compressionLevel]: level,
        [zlibConstants.ZSTD_c_checksumFlag]: 1,
      },
    }),
  );
}

/**
 * zstd decompression on the read path, in the thread pool. Refuses a frame whose window needs more than 8 MiB
 * (levels up to 19 use at most that), so a crafted object cannot make a restore allocate without bound. A damaged
 * frame fails the read (pg-restore.ts names it), though the authenticated decryption before it makes that unlikely.
 */
export function zstdDecompressStage(highWaterMark = STAGE_HIGH_WATER_MARK): Transform {
  return createZstdDecompress(
    withHighWaterMark(highWaterMark, {
      chunkSize: STAGE_HIGH_WATER_MARK,
      params: { [zlibConstants.ZSTD_d_windowLogMax]: 23 },
    }),
  );
}

/** zlib hands its options to the Transform underneath (lib/zlib.js ZlibBase); @types/node does not say so. */
function withHighWaterMark(highWaterMark: number, options: ZstdOptions): ZstdOptions {
  return { ...options, highWaterMark } as ZstdOptions;
}

/** Asserts the start of a zstd frame: what the pipeline's compression writes before anything else. */
export function assertZstdHeader(head: Buffer): void {
  if (head.length < 4 || !head.subarray(0, 4).equals(ZSTD_MAGIC)) {
    throw new RestoreFailedError('the decrypted dump does not start with a zstd frame', {
      hint: 'the manifest says the pipeline compressed this dump, but its contents are not zstd: do not rely on it',
    });
  }
}
