// A child's stdout read into a ring of reused buffers: every byte arrives, in order, and no buffer is read into
// while a stage still holds the chunk in it (real processes, a real Unix socket, node's zstd).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferRing, openRingStdout } from '../../functions/adapters/postgres/ring-stdout.js';
import { zstdCompressStage } from '../../functions/adapters/streams.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let folder: string;
let file: string;
let content: Buffer;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'kb-ring-test-'));
  file = path.join(folder, 'data');
  // Half random, half repetitive: zstd gets both kinds of input.
  content = Buffer.concat([randomBytes(6 * 1024 * 1024), Buffer.alloc(6 * 1024 * 1024, 'keycloak ')]);
  await writeFile(file, content);
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** `cat` of the file with its stdout on the ring's socket, as pg-dump.ts spawns pg_dump. */
async function catThroughRing(ring: BufferRing) {
  const stdout = await openRingStdout(ring);
  const child = spawn('cat', [file], { stdio: ['ignore', stdout.childEnd, 'inherit'] });
  stdout.childEnd.destroy();
  const exit = new Promise<number | null>((resolve) => child.once('close', resolve));
  return { stdout, exit };
}

/** Holds each chunk for a while before reading it, so a buffer reused too early would show in the bytes. */
function slowReader(ring: BufferRing, received: Buffer[]): Transform {
  let n = 0;
  return ring.releasedBy(
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        n += 1;
        setTimeout(
          () => {
            received.push(Buffer.from(chunk));
            callback();
          },
          n % 7 === 0 ? 3 : 0,
        );
      },
    }),
  );
}

describe('ring stdout', () => {
  it('delivers every byte of a child that writes far more than the ring holds, through a stage that holds chunks', async () => {
    // 4 × 64 KiB against 12 MiB: the reader stops and resumes hundreds of times.
    const ring = new BufferRing(4, 64 * 1024);
    const { stdout, exit } = await catThroughRing(ring);
    const received: Buffer[] = [];
    const queue = new PassThrough({ highWaterMark: 1024 * 1024 });

    await pipeline(
      stdout.output,
      queue,
      slowReader(ring, received),
      new Writable({ write: (_c, _e, cb) => cb() }),
    );
    stdout.close();

    expect(await exit).toBe(0);
    const all = Buffer.concat(received);
    expect(all.length).toBe(content.length);
    expect(sha256(all)).toBe(sha256(content));
    expect(received.length).toBeGreaterThan(content.length / (64 * 1024) - 1);
    // The reader stopped whenever the last free buffer was being read into: it never needed one outside the ring.
    expect(ring.takenOutside).toBe(0);
    // Every buffer came back but the one the socket holds to read into next.
    expect(ring.freeCount).toBe(3);
  });

  it('zstd compression gives every buffer back once it has the bytes, and the frame decompresses to the input', async () => {
    const ring = new BufferRing();
    const { stdout, exit } = await catThroughRing(ring);
    const compressed: Buffer[] = [];
    await pipeline(
      stdout.output,
      ring.releasedBy(zstdCompressStage(1)),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          compressed.push(Buffer.from(chunk));
          // A slow consumer: zstd's output backs up, and with it the ring.
          setImmediate(callback);
        },
      }),
    );
    stdout.close();

    expect(await exit).toBe(0);
    expect(sha256(zstdDecompressSync(Buffer.concat(compressed)))).toBe(sha256(content));
    expect(ring.takenOutside).toBe(0);
    expect(ring.freeCount).toBe(15);
  });

  it('ends the output when the child dies mid-write, with the bytes it wrote before', async () => {
    const ring = new BufferRing(4, 64 * 1024);
    const stdout = await openRingStdout(ring);
    const child = spawn(
      process.execPath,
      ['-e', "process.stdout.write(Buffer.alloc(300000, 'x'), () => process.kill(process.pid, 'SIGKILL'))"],
      { stdio: ['ignore', stdout.childEnd, 'inherit'] },
    );
    stdout.childEnd.destroy();
    const signal = new Promise((resolve) => child.once('close', (_code, sig) => resolve(sig)));
    const received: Buffer[] = [];
    await pipeline(stdout.output, slowReader(ring, received), new Writable({ write: (_c, _e, cb) => cb() }));
    stdout.close();

    expect(await signal).toBe('SIGKILL');
    expect(Buffer.concat(received).equals(Buffer.alloc(300000, 'x'))).toBe(true);
  });
});
