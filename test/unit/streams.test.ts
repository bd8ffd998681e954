import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  assertPgDumpHeader,
  assertZstdHeader,
  coalesce,
  DigestStage,
  discard,
  holdEndUntil,
  peekHeader,
  zstdCompressStage,
  zstdDecompressStage,
} from '../../functions/adapters/streams.js';
import { ChecksumMismatchError, DumpFailedError, RestoreFailedError } from '../../functions/core/errors.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function source(chunks: Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false });
}

function collector(): { sink: Writable; chunks: Buffer[]; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return { sink, chunks, bytes: () => Buffer.concat(chunks) };
}

describe('DigestStage', () => {
  it('counts and hashes every byte while passing the chunks on unchanged', async () => {
    const parts = [randomBytes(1000), randomBytes(70_000), randomBytes(1)];
    const digest = new DigestStage();
    const out = collector();

    await pipeline(source(parts), digest, out.sink);

    const all = Buffer.concat(parts);
    expect(digest.bytes).toBe(all.length);
    expect(digest.digestHex()).toBe(sha256(all));
    expect(out.bytes().equals(all)).toBe(true);
    expect(out.chunks[1]).toBe(parts[1]); // same Buffer object: no copy
  });

  it('hashes an empty stream as the SHA-256 of nothing', async () => {
    const digest = new DigestStage();
    await pipeline(source([]), digest, discard());
    expect(digest.bytes).toBe(0);
    expect(digest.digestHex()).toBe(sha256(Buffer.alloc(0)));
  });

  it('only counts when told not to hash, and says so when asked for a digest', async () => {
    const digest = new DigestStage({ hash: false });
    await pipeline(source([Buffer.alloc(10), Buffer.alloc(5)]), digest, discard());
    expect(digest.bytes).toBe(15);
    expect(digest.complete).toBe(true);
    expect(() => digest.digestHex()).toThrow(/only counts/);
  });

  it('refuses to give a digest before the stream has finished', () => {
    const digest = new DigestStage();
    expect(digest.complete).toBe(false);
    expect(() => digest.digestHex()).toThrow(/before the stream finished/);
  });

  it('fails at the end with ChecksumMismatchError naming the key and both digests when the bytes differ', async () => {
    const data = randomBytes(5000);
    const wrong = sha256(Buffer.from('something else'));
    const digest = new DigestStage({ expectSha256: wrong, objectKey: 'kc/2026/01/01/b/dump.pgdump.enc' });

    const failure = await pipeline(source([data]), digest, discard()).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(ChecksumMismatchError);
    const message = (failure as Error).message;
    expect(message).toContain('kc/2026/01/01/b/dump.pgdump.enc');
    expect(message).toContain(wrong);
    expect(message).toContain(sha256(data));
  });

  it('passes when the bytes hash to the expected digest, in either letter case', async () => {
    const data = randomBytes(5000);
    const digest = new DigestStage({ expectSha256: sha256(data).toUpperCase() });
    await pipeline(source([data]), digest, discard());
    expect(digest.digestHex()).toBe(sha256(data));
  });

  it('reports progress at most once per interval and once more at the end', async () => {
    const seen: number[] = [];
    const digest = new DigestStage({ onProgress: (bytes) => seen.push(bytes), progressIntervalMs: 60_000 });
    await pipeline(source([Buffer.alloc(10), Buffer.alloc(20), Buffer.alloc(30)]), digest, discard());
    expect(seen).toEqual([10, 60]);
  });
});

describe('peekHeader', () => {
  it('hands the first n bytes to the check even when they arrive split, and passes all bytes on', async () => {
    const heads: string[] = [];
    const out = collector();
    const parts = [Buffer.from('PG'), Buffer.from('DM'), Buffer.from('P rest of the archive')];

    await pipeline(
      source(parts),
      peekHeader(5, (head) => heads.push(head.toString())),
      out.sink,
    );

    expect(heads).toHaveLength(1);
    expect(heads[0]!.startsWith('PGDMP')).toBe(true);
    expect(out.bytes().toString()).toBe('PGDMP rest of the archive');
  });

  it('fails the stream with the error the check throws, and passes nothing on', async () => {
    const out = collector();
    const failure = await pipeline(
      source([Buffer.from('-- PostgreSQL database dump\nCREATE TABLE')]),
      peekHeader(5, assertPgDumpHeader),
      out.sink,
    ).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(DumpFailedError);
    expect((failure as Error).message).toMatch(/PGDMP/);
    expect(out.chunks).toHaveLength(0);
  });

  it('checks a stream shorter than n at its end: an empty dump fails', async () => {
    const failure = await pipeline(source([]), peekHeader(5, assertPgDumpHeader), discard()).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(DumpFailedError);
    expect((failure as Error).message).toMatch(/wrote nothing/);
  });
});

describe('coalesce', () => {
  it('regroups small chunks into chunks of the given size, keeping every byte in order', async () => {
    const data = randomBytes(10_000);
    const parts: Buffer[] = [];
    for (let i = 0; i < data.length; i += 300) parts.push(data.subarray(i, i + 300));
    const out = collector();

    await pipeline(source(parts), coalesce(4096), out.sink);

    expect(out.chunks.map((c) => c.length)).toEqual([4096, 4096, 10_000 - 8192]);
    expect(out.bytes().equals(data)).toBe(true);
  });

  it('passes a chunk that fills a whole target without copying it', async () => {
    const big = randomBytes(8192);
    const out = collector();
    await pipeline(source([big]), coalesce(4096), out.sink);
    expect(out.chunks).toEqual([big]);
    expect(out.chunks[0]).toBe(big);
  });

  it('splits a large chunk that arrives while a target is partly filled', async () => {
    const data = randomBytes(9000);
    const out = collector();
    await pipeline(source([data.subarray(0, 100), data.subarray(100)]), coalesce(4096), out.sink);
    expect(out.chunks.map((c) => c.length)).toEqual([4096, 4096, 808]);
    expect(out.bytes().equals(data)).toBe(true);
  });
});

describe('zstd stages', () => {
  // Compressible, as an archive is: repeated rows with some randomness.
  const rows = (n: number) =>
    Buffer.from(
      Array.from(
        { length: n },
        (_, i) => `${i}\tuser-${i}@example.org\t${(i * 2654435761) % 1000003}\n`,
      ).join(''),
    );

  it('compress into one zstd frame with a content checksum that zstd itself decompresses', async () => {
    const input = rows(50_000);
    const out = collector();
    await pipeline(
      source([input.subarray(0, 700_000), input.subarray(700_000)]),
      zstdCompressStage(3),
      out.sink,
    );
    const frame = out.bytes();

    expect(frame.length).toBeLessThan(input.length / 3);
    expect(() => assertZstdHeader(frame)).not.toThrow();
    // Frame header descriptor (RFC 8878 3.1.1.1.1): bit 2 is the content checksum flag.
    expect(frame[4]! & 0b100).toBe(0b100);
    expect(zstdDecompressSync(frame).equals(input)).toBe(true);
  });

  it('decompress what zstd wrote, at any level, split anywhere', async () => {
    const input = rows(20_000);
    for (const level of [1, 3, 12]) {
      const frame = zstdCompressSync(input, { params: { [zlibConstants.ZSTD_c_compressionLevel]: level } });
      const out = collector();
      await pipeline(source([frame.subarray(0, 7), frame.subarray(7)]), zstdDecompressStage(), out.sink);
      expect(out.bytes().equals(input)).toBe(true);
    }
  });

  it('refuse a damaged frame instead of passing garbage on', async () => {
    const frame = zstdCompressSync(rows(5_000));
    frame[Math.floor(frame.length / 2)]! ^= 0xff;
    await expect(pipeline(source([frame]), zstdDecompressStage(), discard())).rejects.toThrow();
  });

  it('say so when the bytes are not a zstd frame', () => {
    expect(() => assertZstdHeader(Buffer.from('PGDMP\x01\x0e\x00'))).toThrow(RestoreFailedError);
    expect(() => assertZstdHeader(Buffer.alloc(0))).toThrow(/zstd frame/);
  });
});

describe('holdEndUntil', () => {
  it('ends the stream once the verdict resolves', async () => {
    const out = collector();
    let verdictAsked = false;
    await pipeline(
      source([Buffer.from('abc')]),
      holdEndUntil(async () => {
        verdictAsked = true;
      }),
      out.sink,
    );
    expect(verdictAsked).toBe(true);
    expect(out.bytes().toString()).toBe('abc');
  });

  it('fails the stream instead of ending it when the verdict rejects, so the consumer never sees a clean end', async () => {
    let finished = false;
    const sink = new Writable({
      write(_chunk, _encoding, callback) {
        callback();
      },
      final(callback) {
        finished = true;
        callback();
      },
    });
    const failure = await pipeline(
      source([Buffer.from('abc')]),
      holdEndUntil(() => Promise.reject(new DumpFailedError('pg_dump exited with code 1'))),
      sink,
    ).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(DumpFailedError);
    expect(finished).toBe(false);
  });
});
